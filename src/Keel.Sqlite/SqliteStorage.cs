using System.Data.Common;
using System.Globalization;
using Keel.Storage;
using Microsoft.Data.Sqlite;

namespace Keel.Sqlite;

/// <summary>
/// Keel's storage on SQLite: one database file shared by every process on one host. WAL mode lets readers
/// run beside the single writer; every write runs in <c>BEGIN IMMEDIATE</c> so two writers queue on the
/// busy timeout instead of failing on a stale snapshot. Its SQL sits beside each area as named statements
/// (<c>Claims/ClaimsSql.cs</c>, <c>Jobs/JobsSql.cs</c>, …).
/// </summary>
public sealed partial class SqliteStorage : IKeelStorage
{
    private const int ReadOnlyError = 8; // SQLITE_READONLY
    private const int CantOpenError = 14; // SQLITE_CANTOPEN
    private readonly string _connectionString;
    private readonly string _pragmas;
    private readonly string _immutableConnectionString;
    private readonly TimeProvider _clock;

    /// <summary>Creates the store.</summary>
    /// <param name="options">Where the database is.</param>
    /// <param name="timeProvider">The clock used when an operation is given no time; the system clock by default.</param>
    public SqliteStorage(SqliteStorageOptions options, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _clock = timeProvider ?? TimeProvider.System;
        _connectionString = BuildConnectionString(options);
        var busyMs = (long)options.BusyTimeout.TotalMilliseconds;
        _pragmas = ConnectionSql.Pragmas(busyMs, options.SynchronousFull);
        DatabasePath = new SqliteConnectionStringBuilder(_connectionString).DataSource;
        _immutableConnectionString = new SqliteConnectionStringBuilder(_connectionString)
        {
            DataSource = new Uri(Path.GetFullPath(DatabasePath)).AbsoluteUri + "?immutable=1",
            Mode = SqliteOpenMode.ReadOnly,
        }.ToString();
    }

    /// <summary>The database file.</summary>
    public string DatabasePath { get; }

    /// <inheritdoc />
    public string Engine => "sqlite";

    /// <inheritdoc />
    public string? DescribeMissingDatabase() => File.Exists(DatabasePath)
        ? null
        : $"the SQLite database file {Path.GetFullPath(DatabasePath)} does not exist: check the path, or create it with `keel migrate`";

    /// <inheritdoc />
    public bool IsTransient(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SqliteException { SqliteErrorCode: 5 or 6 })
            {
                return true; // SQLITE_BUSY, SQLITE_LOCKED: another process holds the write lock.
            }

            if (e is IOException or TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    private static string BuildConnectionString(SqliteStorageOptions options)
    {
        var raw = options.ConnectionString;
        if (string.IsNullOrWhiteSpace(raw))
        {
            throw new ArgumentException("the SQLite connection string is empty: give a file path such as keel.db", nameof(options));
        }

        var builder = raw.Contains('=', StringComparison.Ordinal)
            ? new SqliteConnectionStringBuilder(raw)
            : new SqliteConnectionStringBuilder { DataSource = raw };
        builder.ForeignKeys = true;
        builder.Pooling = true;
        builder.DefaultTimeout = Math.Max(1, (int)options.BusyTimeout.TotalSeconds);
        if (builder.Mode == SqliteOpenMode.Memory || builder.DataSource is ":memory:" or "")
        {
            throw new ArgumentException("Keel needs a SQLite database file that several connections share; an in-memory database is not supported", nameof(options));
        }

        return builder.ToString();
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await ExecuteAsync(connection, null, _pragmas, cancellationToken);
            return connection;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is ReadOnlyError or CantOpenError && CanOnlyBeRead())
        {
            await connection.DisposeAsync();
            return await OpenImmutableAsync(cancellationToken);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs <paramref name="work"/> in a <c>BEGIN IMMEDIATE</c> transaction on a fresh connection and commits.</summary>
    private async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var transaction = connection.BeginTransaction(deferred: false);
            var result = await work(connection, transaction);
            await transaction.CommitAsync(cancellationToken);
            return result;
        }
        catch (SqliteException e) when (e.SqliteErrorCode is ReadOnlyError)
        {
            throw ReadOnly(e);
        }
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        return command;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<object?> ScalarAsync(SqliteConnection connection, SqliteTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    private static async Task ExecuteForJobAsync(SqliteConnection connection, SqliteTransaction transaction, string sql, long jobId, long now, CancellationToken cancellationToken)
    {
        await using var command = Command(connection, transaction, sql);
        command.Parameters.AddWithValue("@job_id", jobId);
        if (sql.Contains("@now", StringComparison.Ordinal))
        {
            command.Parameters.AddWithValue("@now", now);
        }

        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private long Micros(DateTimeOffset? now) => TimeEncoding.ToMicros(now ?? _clock.GetUtcNow());

    private static DateTimeOffset Time(DbDataReader reader, int ordinal) => TimeEncoding.FromMicros(reader.GetInt64(ordinal));

    private static DateTimeOffset? NullableTime(DbDataReader reader, int ordinal)
        => reader.IsDBNull(ordinal) ? null : TimeEncoding.FromMicros(reader.GetInt64(ordinal));

    private static object StaleBefore(long now, TimeSpan? staleAfter)
        => staleAfter is { } after ? now - (after.Ticks / 10) : DBNull.Value;

    private static TimeSpan Age(long now, long then) => TimeSpan.FromTicks(Math.Max(0, now - then) * 10);

    private static string JsonArray(IEnumerable<long> ids) => "[" + string.Join(',', ids.Select(id => id.ToString(CultureInfo.InvariantCulture))) + "]";
}
