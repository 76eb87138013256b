using System.Data.Common;
using System.Globalization;
using System.Net.Sockets;
using Keel.Storage;
using MySqlConnector;

namespace Keel.MySql;

/// <summary>
/// Keel's storage on MariaDB (10.6 and later) or MySQL 8: many worker hosts claim concurrently with
/// <c>FOR UPDATE SKIP LOCKED</c>, and every finalizing call is fenced by the claim row. MariaDB has neither
/// data-modifying CTEs nor <c>UPDATE … RETURNING</c>, so an operation is a few statements in one READ COMMITTED
/// transaction, sent together where nothing in between must be read (a claim: two round trips; a completion: one).
/// Times are <c>BIGINT</c> microseconds since the Unix epoch, taken from the database clock
/// (<see cref="ConnectionSql"/>). Its SQL sits beside each area as named statements (<c>Claims/ClaimsSql.cs</c>, …).
/// </summary>
/// <remarks>
/// Liveness is the lease alone (and, on the same host, the pid), as on SQLite: MariaDB's session locks
/// (<c>GET_LOCK</c>) would tell a dead session only as unreliably as PostgreSQL's, and are not used. Idle workers
/// poll: there is no LISTEN/NOTIFY.
/// </remarks>
public sealed partial class MySqlStorage : IKeelStorage, IAsyncDisposable, IDisposable
{
    private readonly MySqlDataSource _dataSource;

    /// <summary>Creates a store that owns a pooled data source built from <paramref name="options"/>.</summary>
    /// <param name="options">The connection string.</param>
    /// <exception cref="ArgumentException">The connection string is empty.</exception>
    public MySqlStorage(MySqlStorageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            throw new ArgumentException("MySqlStorageOptions.ConnectionString is empty; set it to a MySqlConnector connection string", nameof(options));
        }

        var builder = new MySqlConnectionStringBuilder(options.ConnectionString)
        {
            AllowUserVariables = true, // @keel_now, the unit of work's time (ConnectionSql)
            UseAffectedRows = false, // an UPDATE counts the rows it matched: a heartbeat at a pinned time still finds its row
            ConnectionReset = true, // a connection back from the pool has no transaction and no @keel_now of its last user
        };
        _dataSource = new MySqlDataSource(builder.ConnectionString);
        DatabaseName = builder.Database;
    }

    /// <summary>The database (schema) Keel's tables are in, from the connection string.</summary>
    public string DatabaseName { get; }

    /// <inheritdoc />
    public string Engine => "mysql";

    /// <inheritdoc />
    public bool IsTransient(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case MySqlException mysql:
                    // A server error decides on its own code: a constraint violation is never transient.
                    return mysql.IsTransient
                        || mysql.ErrorCode is MySqlErrorCode.LockDeadlock or MySqlErrorCode.LockWaitTimeout
                            or MySqlErrorCode.UnableToConnectToHost or MySqlErrorCode.ServerShutdown
                            or MySqlErrorCode.ConnectionCountError;
                case SocketException or IOException or TimeoutException:
                    return true;
                case OperationCanceledException:
                    return false;
            }
        }

        return false;
    }

    /// <summary>Closes the store's connection pool.</summary>
    /// <returns>A task completing once done.</returns>
    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    /// <summary>Closes the store's connection pool.</summary>
    public void Dispose() => _dataSource.Dispose();

    private async Task<MySqlConnection> OpenAsync(CancellationToken cancellationToken)
        => await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Runs <paramref name="work"/> in one transaction on a pooled connection and commits it (unless the work did).</summary>
    private async Task<T> WriteAsync<T>(DateTimeOffset? now, Func<Session, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var session = Session.Begin(connection, now);
        try
        {
            var result = await work(session).ConfigureAwait(false);
            await session.CommitAsync(cancellationToken).ConfigureAwait(false);
            return result;
        }
        catch
        {
            await session.RollbackAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <paramref name="work"/> outside a transaction (reads), with the unit's time taken first.</summary>
    private async Task<T> ReadAsync<T>(DateTimeOffset? now, Func<Session, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await work(Session.Autocommit(connection, now)).ConfigureAwait(false);
    }

    private static object Micros(DateTimeOffset? value) => value is { } v ? TimeEncoding.ToMicros(v) : DBNull.Value;

    private static DateTimeOffset Time(DbDataReader reader, int ordinal) => TimeEncoding.FromMicros(reader.GetInt64(ordinal));

    private static DateTimeOffset? NullableTime(DbDataReader reader, int ordinal)
        => reader.IsDBNull(ordinal) ? null : TimeEncoding.FromMicros(reader.GetInt64(ordinal));

    private static TimeSpan Age(long now, long then) => TimeSpan.FromTicks(Math.Max(0, now - then) * 10);

    private static bool Flag(DbDataReader reader, int ordinal) => Convert.ToInt64(reader.GetValue(ordinal), CultureInfo.InvariantCulture) != 0;

    private static string? NullableString(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    /// <summary>
    /// One unit of work on one connection: a transaction begun by the text in front of its first statement (no round
    /// trip of its own), or the caller's transaction, or none (reads). Every statement after the first reads the
    /// unit's time from <c>@keel_now</c>.
    /// </summary>
    private sealed class Session
    {
        private readonly MySqlConnection _connection;
        private readonly MySqlTransaction? _transaction;
        private readonly object _now;
        private readonly bool _owned;
        private string? _prefix;
        private bool _sent;
        private bool _committed;
        private long? _nowRead;
        private bool _bound;

        private Session(MySqlConnection connection, MySqlTransaction? transaction, string prefix, DateTimeOffset? now, bool owned)
        {
            _connection = connection;
            _transaction = transaction;
            _prefix = prefix;
            _now = Micros(now);
            _owned = owned;
        }

        /// <summary>A transaction of its own.</summary>
        public static Session Begin(MySqlConnection connection, DateTimeOffset? now) => new(connection, null, ConnectionSql.TransactionBegin, now, owned: true);

        /// <summary>No transaction: each statement commits on its own.</summary>
        public static Session Autocommit(MySqlConnection connection, DateTimeOffset? now) => new(connection, null, ConnectionSql.NowTake, now, owned: false);

        /// <summary>
        /// Inside the caller's transaction, which the caller commits. The caller's connection string need not allow user
        /// variables, so the unit's time is bound to every command as the parameter <c>@keel_now</c> instead.
        /// </summary>
        public static async Task<Session> WithinAsync(MySqlConnection connection, MySqlTransaction transaction, DateTimeOffset? now, CancellationToken cancellationToken)
        {
            var session = new Session(connection, transaction, string.Empty, now, owned: false) { _prefix = null };
            if (now is { } pinned)
            {
                session._nowRead = TimeEncoding.ToMicros(pinned);
            }
            else
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = ConnectionSql.DatabaseNowRead;
                session._nowRead = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            }

            session._bound = true;
            return session;
        }

        /// <summary>A command of this unit: the first carries the unit's beginning in front of it.</summary>
        public MySqlCommand Command(string sql)
        {
            var command = _connection.CreateCommand();
            command.Transaction = _transaction;
            if (_prefix is { } prefix)
            {
                command.CommandText = prefix + sql;
                command.Parameters.AddWithValue("@now", _now);
                _prefix = null;
            }
            else
            {
                command.CommandText = sql;
            }

            if (_bound)
            {
                command.Parameters.AddWithValue("@keel_now", _nowRead!.Value);
            }

            _sent = true;
            return command;
        }

        /// <summary>A command that also commits the unit: for the last statements, when their results are all it needs.</summary>
        public MySqlCommand CommandCommitting(string sql)
        {
            if (!_owned)
            {
                return Command(sql);
            }

            _committed = true;
            return Command(sql.TrimEnd().TrimEnd(';') + ConnectionSql.TransactionCommit);
        }

        /// <summary>The unit's time in microseconds (read once, the first time it is asked for).</summary>
        public async Task<long> NowAsync(CancellationToken cancellationToken)
        {
            if (_nowRead is { } known)
            {
                return known;
            }

            await using var command = Command(ConnectionSql.NowRead);
            _nowRead = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            return _nowRead.Value;
        }

        public async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken)
        {
            await using var command = Command(sql);
            return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        public async Task CommitAsync(CancellationToken cancellationToken)
        {
            if (!_owned || !_sent || _committed)
            {
                return;
            }

            _committed = true;
            await using var command = _connection.CreateCommand();
            command.CommandText = ConnectionSql.Commit;
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        /// <summary>Best effort: a broken connection has no transaction left, and the pool resets the session anyway.</summary>
        public async Task RollbackAsync()
        {
            if (!_owned || !_sent || _connection.State != System.Data.ConnectionState.Open)
            {
                return;
            }

            try
            {
                await using var command = _connection.CreateCommand();
                command.CommandText = ConnectionSql.Rollback;
                await command.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }
#pragma warning disable CA1031 // The original error is what the caller needs; a failed rollback adds nothing.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <summary>Integer ids as a SQL list (MariaDB has no array parameters); never empty.</summary>
    private static string IdList(IEnumerable<long> ids)
    {
        var text = string.Join(',', ids.Select(id => id.ToString(CultureInfo.InvariantCulture)));
        return text.Length == 0 ? "NULL" : text;
    }
}
