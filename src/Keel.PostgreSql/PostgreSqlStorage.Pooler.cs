using Npgsql;

namespace Keel.PostgreSql;

/// <summary>
/// The first call looks at what answers: PostgreSQL itself, or a pooler in front of it. A pooler hands the client a
/// backend key of its own, so the pid the connection was given differs from <c>pg_backend_pid()</c>. Behind one
/// (PgBouncer in transaction mode) session state is not the client's: advisory locks land on whatever server
/// connection ran the statement, LISTEN loses notifications, prepared statements vanish. So Keel then uses leases
/// alone, polls, and prepares nothing.
/// </summary>
public sealed partial class PostgreSqlStorage
{
    private readonly SemaphoreSlim _detectGate = new(1, 1);
    private volatile object? _pooledBox;

    /// <summary>True when a pooler was detected; false when PostgreSQL answers directly; null before the first call.</summary>
    private bool? Pooled => _pooledBox is bool b ? b : null;

    /// <summary>True when processes hold session locks (the liveness in effect, once resolved).</summary>
    private bool UsesSessions => _liveness switch
    {
        PostgreSqlLiveness.Session => true,
        PostgreSqlLiveness.Lease => false,
        _ => Pooled is false,
    };

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> StartupWarningsAsync(CancellationToken cancellationToken)
    {
        await DataSourceAsync(cancellationToken).ConfigureAwait(false);
        if (Pooled is not true)
        {
            return [];
        }

        return _liveness switch
        {
            PostgreSqlLiveness.Session =>
            [
                "a connection pooler answers for PostgreSQL but Keel:PostgreSql:Liveness is Session: session locks are only correct through a session-mode pooler; through a transaction-mode one (PgBouncer's default for apps) live processes will be pruned — set it to Lease or Auto",
            ],
            _ =>
            [
                "a connection pooler answers for PostgreSQL: liveness falls back to leases (a process on another host that dies is recovered once its lease expires, Keel:AliveThreshold, instead of within seconds), LISTEN/NOTIFY is off (idle workers poll every PollingInterval), and statements are not prepared. Set Keel:PostgreSql:Liveness=Lease to choose this explicitly",
            ],
        };
    }

    private ValueTask<NpgsqlDataSource> DataSourceAsync(CancellationToken cancellationToken)
        => Pooled is null ? new ValueTask<NpgsqlDataSource>(DetectAsync(cancellationToken)) : new ValueTask<NpgsqlDataSource>(DataSource);

    private async Task<NpgsqlDataSource> DetectAsync(CancellationToken cancellationToken)
    {
        await _detectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Pooled is null)
            {
                // Probe through the source that prepares nothing: a pooler must never see a prepared statement.
                await using var connection = await (_unprepared ?? _dataSource).OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var command = new NpgsqlCommand(ConnectionSql.BackendPid, connection);
                var backend = (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
                _pooledBox = backend != connection.ProcessID;
            }

            return DataSource;
        }
        finally
        {
            _detectGate.Release();
        }
    }
}
