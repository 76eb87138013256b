using System.Globalization;
using Npgsql;

namespace Keel.TestInfrastructure;

/// <summary>A streaming standby of a server of the test's own, and its promotion: a failover, all on this machine.</summary>
public sealed partial class PostgresServer
{
    private volatile bool _standby;

    /// <summary>True while this server is a streaming standby (started by <see cref="StartStandbyAsync"/>, not yet promoted).</summary>
    public bool IsStandby => _standby;

    /// <summary>
    /// Starts a streaming standby of this server: <c>pg_basebackup -X stream -R</c> into a new temp folder, then a
    /// server on another free port with the same <see cref="Settings"/>, following this one. Its connections are
    /// read-only until <see cref="PromoteAsync"/>. This server must have been started with
    /// <see cref="PostgresServerOptions.Replication"/> (or otherwise allow replication). Dispose the standby too: it
    /// is a server of its own (stopped by pid, its folder deleted).
    /// </summary>
    /// <param name="synchronous">
    /// True: from now on this server's commits wait until the standby has them (<c>synchronous_standby_names = '*'</c>
    /// through ALTER SYSTEM, and <c>synchronous_commit = on</c> for every role, which outranks the command line's
    /// <c>off</c> of <see cref="PostgresServerOptions.TestSettings"/>), so a failover loses no acknowledged commit.
    /// A commit then hangs while the standby is down: promote it, or stop this server, before disposing it.
    /// </param>
    /// <param name="ct">Cancels the start.</param>
    /// <returns>The running standby, caught up with this server.</returns>
    public async Task<PostgresServer> StartStandbyAsync(bool synchronous = false, CancellationToken ct = default)
    {
        ThrowIfExternal("copy");
        ObjectDisposedException.ThrowIf(_disposed, this);
        var walLevel = await QueryAsync<string>("SHOW wal_level", ct).ConfigureAwait(false);
        if (walLevel == "minimal")
        {
            throw new InvalidOperationException($"the server on port {Port} runs with wal_level=minimal and cannot feed a standby: start it with PostgresServerOptions.Replication = true");
        }

        var basebackup = FindSibling("pg_basebackup");
        var root = Path.Combine(Path.GetTempPath(), "keel-pg-standby-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(Path.Combine(root, "sock"));
        var standby = new PostgresServer(root, _postgresBinary!, _runuser, LocalProcess.FreePort(), new Dictionary<string, string>(Settings, StringComparer.Ordinal), _startTimeout)
        {
            _standby = true,
        };
        try
        {
            if (_runuser is not null)
            {
                await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(null, "chown", ["-R", "postgres:postgres", root]), ct).ConfigureAwait(false);
            }

            string[] args = ["-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", "-D", standby.DataDirectory, "-X", "stream", "-R", "-c", "fast", "--no-sync"];
            await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(_runuser, basebackup, args), ct, _startTimeout * 2).ConfigureAwait(false);
            standby.HookProcessExit();
            await standby.LaunchAsync(allowNewPort: true, ct).ConfigureAwait(false);
            if (synchronous)
            {
                await ExecuteAsync("ALTER SYSTEM SET synchronous_standby_names = '*'", ct).ConfigureAwait(false);
                await ExecuteAsync("ALTER ROLE ALL SET synchronous_commit = 'on'", ct).ConfigureAwait(false);
                await ExecuteAsync("SELECT pg_reload_conf()", ct).ConfigureAwait(false);
            }

            await WaitForStandbyAsync(synchronous, ct).ConfigureAwait(false);
            return standby;
        }
        catch
        {
            await standby.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Promotes this standby to a primary (<c>pg_promote</c>) and waits until it accepts writes. In a failover, stop
    /// or kill the old primary first (<see cref="KillAsync"/>), then promote, then point clients here (a
    /// <see cref="FaultProxy"/> in front of both: <see cref="FaultProxy.Retarget"/>).
    /// </summary>
    /// <param name="ct">Cancels the wait.</param>
    /// <returns>A task completing once the server is out of recovery.</returns>
    /// <exception cref="InvalidOperationException">This server is not a standby.</exception>
    public async Task PromoteAsync(CancellationToken ct = default)
    {
        ThrowIfExternal("promote");
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_standby)
        {
            throw new InvalidOperationException($"the server on port {Port} is not a standby: only a server from StartStandbyAsync can be promoted");
        }

        if (!await QueryAsync<bool>("SELECT pg_promote(true, 60)", ct).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"pg_promote did not finish within 60 s on port {Port}; log tail:\n{LogTail()}");
        }

        var deadline = DateTime.UtcNow + _startTimeout;
        while (await QueryAsync<bool>("SELECT pg_is_in_recovery()", ct).ConfigureAwait(false))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the standby on port {Port} was still in recovery {_startTimeout.TotalSeconds:0} s after pg_promote; log tail:\n{LogTail()}");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }

        _standby = false;
    }

    /// <summary>Waits until a standby streams from this server (and, when asked, as a synchronous one) and has replayed what was written.</summary>
    private async Task WaitForStandbyAsync(bool synchronous, CancellationToken ct)
    {
        var sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn >= pg_current_wal_lsn()"
            + (synchronous ? " AND sync_state = 'sync'" : string.Empty);
        var deadline = DateTime.UtcNow + _startTimeout;
        while (await QueryAsync<long>(sql, ct).ConfigureAwait(false) == 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no standby caught up with the server on port {Port} within {_startTimeout.TotalSeconds:0} s; log tail:\n{LogTail()}");
            }

            await Task.Delay(20, ct).ConfigureAwait(false);
        }
    }

    /// <summary>A program of the same PostgreSQL installation as <c>postgres</c> (symbolic links followed).</summary>
    private string FindSibling(string name)
    {
        var postgres = _postgresBinary!;
        var resolved = File.ResolveLinkTarget(postgres, returnFinalTarget: true)?.FullName ?? postgres;
        foreach (var dir in new[] { Path.GetDirectoryName(resolved), Path.GetDirectoryName(postgres) })
        {
            if (dir is not null && LocalProcess.Executable(Path.Combine(dir, name)) is { } found)
            {
                return found;
            }
        }

        throw new InvalidOperationException($"{name} not found beside {resolved}: install the PostgreSQL client programs of the same version (apt-get install -y postgresql-client)");
    }

    private async Task<T> QueryAsync<T>(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 10 }.ConnectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private async Task ExecuteAsync(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 10 }.ConnectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
