using System.Globalization;
using System.Net.Sockets;
using Npgsql;

namespace Keel.TestInfrastructure;

/// <summary>The faults a PostgreSQL server of the test's own can be put through.</summary>
public sealed partial class PostgresServer
{
    /// <summary>
    /// Crash-restarts the server the way the OOM killer does when it kills one backend: opens a session and
    /// SIGKILLs its backend; the postmaster then ends every other session, reinitializes shared memory, runs crash
    /// recovery and accepts connections again. Completes once every session that was open has been cut off and
    /// the server accepts connections again. The postmaster keeps its pid, and <c>pg_postmaster_start_time()</c>
    /// does not change. Commits acknowledged just before are lost unless the server writes its WAL at commit
    /// (<see cref="PostgresServerOptions.CrashSafeTestSettings"/>, not <see cref="PostgresServerOptions.TestSettings"/>).
    /// </summary>
    /// <param name="ct">Cancels the wait.</param>
    /// <returns>A task completing once the server accepts connections again.</returns>
    /// <exception cref="InvalidOperationException">The server is not running, or the postmaster exited instead of reinitializing.</exception>
    public async Task CrashRestartAsync(CancellationToken ct = default)
    {
        ThrowIfExternal("crash-restart");
        ObjectDisposedException.ThrowIf(_disposed, this);
        System.Diagnostics.Process process;
        lock (_gate)
        {
            process = _process ?? throw new InvalidOperationException("the server is not running; start it (StartAgainAsync) before crash-restarting it");
        }

        var sessions = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 10, ApplicationName = "keel-crash-restart" }.ConnectionString;
        await using var victim = new NpgsqlConnection(sessions);
        await using var witness = new NpgsqlConnection(sessions);
        await victim.OpenAsync(ct).ConfigureAwait(false);
        await witness.OpenAsync(ct).ConfigureAwait(false);
        int backend;
        await using (var command = new NpgsqlCommand("SELECT pg_backend_pid()", victim))
        {
            backend = Convert.ToInt32(await command.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
        }

        if (!LocalProcess.Signal(backend, SIGKILL))
        {
            throw new InvalidOperationException($"could not SIGKILL backend pid {backend} of the server on port {Port}");
        }

        // The witness is another session: once it is cut off, the postmaster has begun its crash cycle, so a
        // successful connection after that comes from the reinitialized server and not from the old one.
        var deadline = DateTime.UtcNow + _startTimeout;
        while (await SessionWorksAsync(witness, ct).ConfigureAwait(false))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the server on port {Port} did not end its other sessions after backend {backend} was killed; log tail:\n{LogTail()}");
            }

            await Task.Delay(10, ct).ConfigureAwait(false);
        }

        if (await WaitUntilReadyAsync(process, deadline, ct).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"the postmaster on port {Port} exited instead of reinitializing after a backend crash (is restart_after_crash off?); log tail:\n{LogTail()}");
        }
    }

    private static async Task<bool> SessionWorksAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        try
        {
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or IOException or SocketException or InvalidOperationException or TimeoutException)
        {
            return false;
        }
    }
}
