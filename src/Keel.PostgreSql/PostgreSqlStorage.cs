using System.Data.Common;
using System.Net.Sockets;
using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>
/// Keel's storage on PostgreSQL: many worker hosts claim concurrently with <c>FOR UPDATE SKIP LOCKED</c>, every
/// hot-path operation is a single statement (one round trip), and finalizing calls are fenced by the claim row.
/// Its SQL sits beside each area as named statements (<c>Claims/ClaimsSql.cs</c>, <c>Jobs/JobsSql.cs</c>, …).
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

    private static bool IsTransientSqlState(string sqlState)
        => sqlState is PostgresErrorCodes.SerializationFailure
            or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.AdminShutdown
            or PostgresErrorCodes.CrashShutdown
            or PostgresErrorCodes.CannotConnectNow
            || sqlState.StartsWith("08", StringComparison.Ordinal);

    private async ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var source = await DataSourceAsync(cancellationToken).ConfigureAwait(false);
        return await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Keel's own pool prepares its frequent statements (Npgsql's automatic preparation) and does not reset a
    /// connection it takes back, unless the connection string decides otherwise.
    /// </summary>
    /// <remarks>
    /// Npgsql's reset is seven statements (<c>SET SESSION AUTHORIZATION DEFAULT</c>, <c>RESET ALL</c>, <c>CLOSE ALL</c>,
    /// <c>UNLISTEN *</c>, <c>pg_advisory_unlock_all()</c>, <c>DISCARD SEQUENCES</c>, <c>DISCARD TEMP</c>) sent ahead of
    /// the next command on the connection: on the hot path, where every claim and completion batch takes a connection
    /// from the pool, more statements than the claim itself (measured: 1.2 of 1.65 statements per job). Keel leaves no
    /// session state on a connection it gives back: its settings are local to a transaction (<c>set_config(…, true)</c>),
    /// a process's session lock is released before its connection goes back (<see cref="ReleaseConnectionAsync"/>), and
    /// the listening connection unlistens (<see cref="ListenAsync"/>).
    /// </remarks>
    internal static string WithKeelDefaults(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!IsPreparingChosen(connectionString))
        {
            builder.MaxAutoPrepare = 32;
            builder.AutoPrepareMinUsages = 2;
        }

        if (!IsChosen(connectionString, "No Reset On Close", "NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }

        return builder.ConnectionString;
    }

    private static bool IsChosen(string connectionString, params string[] keywords)
        => keywords.Any(k => connectionString.Contains(k, StringComparison.OrdinalIgnoreCase));

    private static bool IsPreparingChosen(string connectionString)
        => connectionString.Contains("Auto Prepare", StringComparison.OrdinalIgnoreCase)
           || connectionString.Contains("AutoPrepare", StringComparison.OrdinalIgnoreCase);

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

    private static NpgsqlParameter Now(DateTimeOffset? now) => Time("now", now);

    private static NpgsqlParameter Text(string name, string? value)
        => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

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

    private static DateTimeOffset? NullableTime(DbDataReader reader, int ordinal)
        => reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<DateTimeOffset>(ordinal);

    /// <summary>A <c>timestamptz</c> column (<see cref="StorageRows"/>'s time reader).</summary>
    private static DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

    /// <summary>The run-history parameters of a release: all null records nothing.</summary>
    private static void AddRunEnding(NpgsqlParameterCollection parameters, RunEnding? ending, string? runner)
    {
        parameters.Add(Text("outcome", ending?.Outcome));
        parameters.Add(Text("cause", ending?.Cause));
        parameters.Add(Text("detail", ending?.Detail));
        parameters.Add(Text("runner", runner));
    }

    private static void AddCause(NpgsqlParameterCollection parameters, WorkerLostCause cause)
    {
        parameters.Add(new NpgsqlParameter<string>("exception_type", NpgsqlDbType.Text) { TypedValue = WorkerLostCause.ExceptionType });
        parameters.Add(new NpgsqlParameter<string>("message", NpgsqlDbType.Text) { TypedValue = cause.Message });
        parameters.Add(new NpgsqlParameter<string>("cause", NpgsqlDbType.Text) { TypedValue = cause.Code });
    }
}
