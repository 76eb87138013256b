using System.Data.Common;
using System.Net.Sockets;
using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>
/// Keel's storage on PostgreSQL: many worker hosts claim concurrently with <c>FOR UPDATE SKIP LOCKED</c>, every
/// hot-path operation is a single statement (one round trip), and finalizing calls are fenced by the claim row.
/// All SQL lives in <see cref="PostgreSqlStatements"/>.
/// </summary>
/// <remarks>
/// Each process registered through this store keeps a dedicated connection from <see cref="DataSource"/> (so it
/// counts against the pool size) holding a session-level advisory lock until it is deregistered, pruned or this
/// store is disposed: see <see cref="ProcessesSessionEndedAsync"/>.
/// </remarks>
public sealed partial class PostgreSqlStorage : IKeelStorage, IAsyncDisposable, IDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlDataSource? _unprepared;
    private readonly bool _ownsDataSource;
    private readonly PostgreSqlLiveness _liveness;

    /// <summary>Creates a store that owns a pooled data source built from <paramref name="options"/>.</summary>
    /// <param name="options">The connection string.</param>
    /// <exception cref="ArgumentException">The connection string is empty.</exception>
    public PostgreSqlStorage(PostgreSqlStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException("PostgreSqlStorageOptions.ConnectionString is empty; set it to an Npgsql connection string", nameof(options));
        }

        _dataSource = NpgsqlDataSource.Create(WithKeelDefaults(options.ConnectionString));
        // Behind a transaction-mode pooler a prepared statement outlives the server connection it was prepared on:
        // the same settings without preparing, chosen at the first call when a pooler answers.
        _unprepared = IsPreparingChosen(options.ConnectionString) ? null : NpgsqlDataSource.Create(options.ConnectionString);
        _ownsDataSource = true;
        _liveness = options.Liveness;
    }

    /// <summary>Creates a store on the caller's data source, which the caller keeps owning (and disposes).</summary>
    /// <param name="dataSource">The data source.</param>
    /// <param name="liveness">How processes prove they are alive (see <see cref="PostgreSqlStorageOptions.Liveness"/>).</param>
    public PostgreSqlStorage(NpgsqlDataSource dataSource, PostgreSqlLiveness liveness = PostgreSqlLiveness.Auto)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
        _ownsDataSource = false;
        _liveness = liveness;
    }

    /// <inheritdoc />
    public string Engine => "postgresql";

    /// <summary>
    /// The data source operations take their connections from: the one built from the connection string, or, once a
    /// transaction-mode pooler was detected, its twin that prepares nothing.
    /// </summary>
    public NpgsqlDataSource DataSource => Pooled is true && _unprepared is not null ? _unprepared : _dataSource;

    /// <inheritdoc />
    public bool IsTransient(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException pg:
                    // A server error decides on its own code: a constraint violation is never transient,
                    // whatever it wraps.
                    return pg.IsTransient || IsTransientSqlState(pg.SqlState);
                case NpgsqlException npgsql when npgsql.IsTransient:
                    return true;
                case SocketException or IOException or TimeoutException:
                    return true;
                case OperationCanceledException:
                    return false;
            }
        }

        return false;
    }

    /// <summary>
    /// Keel's own pool prepares its frequent statements (Npgsql's automatic preparation) unless the connection
    /// string decides otherwise.
    /// </summary>
    internal static string WithKeelDefaults(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!IsPreparingChosen(connectionString))
        {
            builder.MaxAutoPrepare = 32;
            builder.AutoPrepareMinUsages = 2;
        }

        return builder.ConnectionString;
    }

    /// <summary>
    /// Vacuums a hot table whose dead rows passed the threshold, with <c>SKIP_LOCKED</c> so that hosts running
    /// maintenance at once never queue behind each other. Autovacuum alone comes too late for a queue: it waits for
    /// 20 % of the table to be dead and visits a database at most once a minute, while a busy worker deletes
    /// thousands of ready and claimed rows a second.
    /// </summary>
    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> HotTablesVacuumAsync(long deadRowsThreshold, CancellationToken cancellationToken)
    {
        var due = new List<string>();
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand(PostgreSqlStatements.HotTablesDead, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("threshold", NpgsqlDbType.Bigint) { TypedValue = deadRowsThreshold });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                due.Add(reader.GetString(0));
            }
        }

        foreach (var table in due)
        {
            // The names come from the fixed list in HotTablesDead, never from a caller.
            await using var vacuum = new NpgsqlCommand("VACUUM (SKIP_LOCKED) " + table, connection);
            await vacuum.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return due;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Limit <= 0)
        {
            return [];
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(PostgreSqlStatements.ClaimsList, connection);
        command.Parameters.Add(new NpgsqlParameter("process_id", NpgsqlDbType.Bigint) { Value = (object?)parameters.ProcessId ?? DBNull.Value });
        command.Parameters.Add(Interval("stale_after", parameters.StaleAfter));
        command.Parameters.Add(new NpgsqlParameter<int>("limit", NpgsqlDbType.Integer) { TypedValue = parameters.Limit });
        command.Parameters.Add(Now(parameters.Now));

        var list = new List<ClaimInfo>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            list.Add(new ClaimInfo(
                reader.GetInt64(0),
                reader.GetInt64(1),
                reader.GetString(2),
                reader.GetString(3),
                reader.GetInt32(4),
                reader.GetFieldValue<DateTimeOffset>(5),
                Age(reader, 6),
                reader.GetInt64(7),
                reader.GetString(8),
                reader.GetString(9),
                reader.GetInt32(10),
                Age(reader, 11))
            {
                LeaseRemaining = reader.GetFieldValue<TimeSpan>(12),
            });
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<RecoveryResult> ClaimsRecoverAsync(ClaimsRecoverParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.ClaimIds);
        ArgumentNullException.ThrowIfNull(parameters.Cause);
        if (parameters.ClaimIds.Count == 0)
        {
            return RecoveryResult.None;
        }

        var release = parameters.Action switch
        {
            ClaimAction.Release => true,
            ClaimAction.Fail => false,
            _ => throw new ArgumentOutOfRangeException(nameof(parameters), parameters.Action, "ClaimsRecoverParams.Action must be Release or Fail"),
        };

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            release ? PostgreSqlStatements.ClaimsRecoverRelease : PostgreSqlStatements.ClaimsRecoverFail,
            connection);
        command.Parameters.Add(new NpgsqlParameter<long[]>("claim_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. parameters.ClaimIds] });
        command.Parameters.Add(Now(parameters.Now));
        if (release)
        {
            AddRunEnding(command.Parameters, new RunEnding(RunOutcomes.Released, parameters.Cause.Code, parameters.Cause.Description), null);
        }
        else
        {
            AddCause(command.Parameters, parameters.Cause);
        }

        int n;
        List<PermitRelease>? releases = null;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            n = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ? checked((int)reader.GetInt64(0)) : 0;
            if (!release && n > 0)
            {
                releases = ReadReleases(reader, 1, 2);
            }
        }

        // Failed jobs gave their permits back (released ones, back to ready, keep theirs): promote blocked jobs.
        if (releases is not null)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return release ? new RecoveryResult(0, 0, Released: n) : new RecoveryResult(0, n);
    }

    /// <summary>
    /// Closes every process's dedicated connection (releasing its session lock: a process still registered then
    /// reads as session-ended), then disposes the data source when this store created it.
    /// </summary>
    /// <returns>A task completing once done.</returns>
    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        foreach (var processId in _sessions.Keys)
        {
            await DropSessionAsync(processId).ConfigureAwait(false);
        }

        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync().ConfigureAwait(false);
            if (_unprepared is not null)
            {
                await _unprepared.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Closes every process's dedicated connection (releasing its session lock), then disposes the data source
    /// when this store created it.
    /// </summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var processId in _sessions.Keys)
        {
            DropSession(processId);
        }

        if (_ownsDataSource)
        {
            _dataSource.Dispose();
            _unprepared?.Dispose();
        }
    }

    private static bool IsTransientSqlState(string sqlState)
        => sqlState is PostgresErrorCodes.SerializationFailure
            or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.AdminShutdown
            or PostgresErrorCodes.CrashShutdown
            or PostgresErrorCodes.CannotConnectNow
            || sqlState.StartsWith("08", StringComparison.Ordinal);

    private static NpgsqlParameter Now(DateTimeOffset? now) => Time("now", now);

    private static NpgsqlParameter Text(string name, string? value)
        => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    /// <summary>The run-history parameters of a release: all null records nothing.</summary>
    private static void AddRunEnding(NpgsqlParameterCollection parameters, RunEnding? ending, string? runner)
    {
        parameters.Add(Text("outcome", ending?.Outcome));
        parameters.Add(Text("cause", ending?.Cause));
        parameters.Add(Text("detail", ending?.Detail));
        parameters.Add(Text("runner", runner));
    }

    private static NpgsqlParameter Time(string name, DateTimeOffset? value)
        => new(name, NpgsqlDbType.TimestampTz) { Value = value is { } v ? v.ToUniversalTime() : DBNull.Value };

    private static NpgsqlParameter Interval(string name, TimeSpan? value)
        => new(name, NpgsqlDbType.Interval) { Value = value is { } v ? v : DBNull.Value };

    private static TimeSpan Age(DbDataReader reader, int ordinal)
    {
        // The caller's Now may be earlier than a stored time; an age is never negative.
        var age = reader.GetFieldValue<TimeSpan>(ordinal);
        return age < TimeSpan.Zero ? TimeSpan.Zero : age;
    }

    private static void AddCause(NpgsqlParameterCollection parameters, WorkerLostCause cause)
    {
        parameters.Add(new NpgsqlParameter<string>("exception_type", NpgsqlDbType.Text) { TypedValue = WorkerLostCause.ExceptionType });
        parameters.Add(new NpgsqlParameter<string>("message", NpgsqlDbType.Text) { TypedValue = cause.Message });
        parameters.Add(new NpgsqlParameter<string>("cause", NpgsqlDbType.Text) { TypedValue = cause.Code });
    }

    private static DateTimeOffset? NullableTime(DbDataReader reader, int ordinal)
        => reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<DateTimeOffset>(ordinal);
}
