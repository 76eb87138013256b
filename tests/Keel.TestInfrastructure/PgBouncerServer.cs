using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Keel.TestInfrastructure;

/// <summary>Settings for <see cref="PgBouncerServer.StartAsync"/>.</summary>
public sealed class PgBouncerOptions
{
    /// <summary><c>pool_mode</c>: <c>transaction</c> (default), <c>session</c> or <c>statement</c>.</summary>
    public string PoolMode { get; set; } = "transaction";

    /// <summary><c>default_pool_size</c>: server connections per database and user. Default 20.</summary>
    public int DefaultPoolSize { get; set; } = 20;

    /// <summary><c>max_client_conn</c>. Default 500 (the usual fd limit of 1024 leaves room for the server side).</summary>
    public int MaxClientConnections { get; set; } = 500;

    /// <summary>
    /// <c>server_lifetime</c>: a server connection older than this is closed once it is idle (a session-level
    /// lock taken on it goes with it). Null keeps PgBouncer's default (3600 s). Whole seconds.
    /// </summary>
    public TimeSpan? ServerLifetime { get; set; }

    /// <summary><c>server_idle_timeout</c>; null keeps PgBouncer's default (600 s). Whole seconds.</summary>
    public TimeSpan? ServerIdleTimeout { get; set; }

    /// <summary>More <c>[pgbouncer]</c> settings, written last (so they win).</summary>
    public IDictionary<string, string> Settings { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>How long to wait for PgBouncer to accept connections.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// A throwaway PgBouncer (Debian's <c>pgbouncer</c>, <c>/usr/sbin/pgbouncer</c>) in front of a
/// <see cref="PostgresServer"/>: its own ini in a temp folder (<c>keel-pgbouncer-*</c>), trust authentication, every
/// database name forwarded to the same name on the server, 127.0.0.1 on a free port. Run as the <c>postgres</c> user
/// when the tests run as root (PgBouncer refuses root); stopped by its pid, its folder deleted on dispose.
/// </summary>
public sealed class PgBouncerServer : IAsyncDisposable
{
    /// <summary>Where Debian installs PgBouncer.</summary>
    public const string DefaultBinary = "/usr/sbin/pgbouncer";

    private const string NotFoundMessage = "pgbouncer not found (" + DefaultBinary + " or on PATH): install it with 'apt-get install -y pgbouncer'";

    private readonly string _root;
    private readonly string _ini;
    private readonly string _pidFile;
    private readonly string _logFile;
    private readonly object _gate = new();
    private Process? _launcher;
    private int _pid;
    private bool _disposed;

    private PgBouncerServer(string root, int port)
    {
        _root = root;
        _ini = Path.Combine(root, "pgbouncer.ini");
        _pidFile = Path.Combine(root, "pgbouncer.pid");
        _logFile = Path.Combine(root, "pgbouncer.log");
        Port = port;
    }

    /// <summary>The port PgBouncer listens on (127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>PgBouncer's own OS process id (0 once stopped).</summary>
    public int Pid => _pid;

    /// <summary>
    /// Starts PgBouncer in front of <paramref name="server"/>.
    /// </summary>
    /// <param name="server">The PostgreSQL server every database name is forwarded to.</param>
    /// <param name="options">Settings; null for transaction pooling with defaults.</param>
    /// <param name="ct">Cancels the start.</param>
    /// <returns>The running PgBouncer.</returns>
    /// <exception cref="InvalidOperationException">pgbouncer is not installed (the message says how to install it), or it did not start.</exception>
    public static async Task<PgBouncerServer> StartAsync(PostgresServer server, PgBouncerOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        options ??= new PgBouncerOptions();
        var binary = FindBinary();
        string? runuser = null;
        if (LocalProcess.IsRoot())
        {
            runuser = LocalProcess.FindRunuser()
                ?? throw new InvalidOperationException("running as root, PgBouncer must run as the 'postgres' user, but 'runuser' was not found: install util-linux");
        }

        var target = new NpgsqlConnectionStringBuilder(server.ConnectionString);
        var root = Path.Combine(Path.GetTempPath(), "keel-pgbouncer-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var bouncer = new PgBouncerServer(root, LocalProcess.FreePort());
        try
        {
            await File.WriteAllTextAsync(bouncer._ini, bouncer.Ini(target.Host ?? "127.0.0.1", target.Port, target.Username ?? "postgres", options), ct).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(root, "users.txt"), $"\"{target.Username ?? "postgres"}\" \"\"\n", ct).ConfigureAwait(false);
            if (runuser is not null)
            {
                await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(null, "chown", ["-R", "postgres:postgres", root]), ct).ConfigureAwait(false);
            }

            bouncer.Launch(runuser, binary);
            await bouncer.WaitUntilReadyAsync(server, options.StartTimeout, ct).ConfigureAwait(false);
            return bouncer;
        }
        catch
        {
            await bouncer.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// <paramref name="connectionString"/> (a database of the server behind this PgBouncer) pointed at PgBouncer
    /// instead. Nothing else changes: a transaction-mode pooler older than 1.21 also needs <c>Max Auto Prepare=0</c>
    /// (the caller decides).
    /// </summary>
    /// <param name="connectionString">An Npgsql connection string to the server behind.</param>
    /// <returns>The same connection string with PgBouncer's host and port.</returns>
    public string ConnectionStringFor(string connectionString)
        => new NpgsqlConnectionStringBuilder(connectionString) { Host = "127.0.0.1", Port = Port }.ConnectionString;

    /// <summary>Kills PgBouncer with SIGKILL: every client connection breaks, and every server connection it held ends.</summary>
    /// <returns>A task completing once it has gone.</returns>
    public Task KillAsync() => Task.Run(() => StopCore(LocalProcess.SIGKILL));

    /// <summary>The last lines of PgBouncer's log, for diagnostics.</summary>
    /// <param name="lines">How many lines.</param>
    /// <returns>The tail of the log, or an empty string.</returns>
    public string LogTail(int lines = 40) => LocalProcess.LogTail(_logFile, lines);

    /// <summary>Stops PgBouncer (SIGTERM, then SIGKILL) and deletes its temp folder.</summary>
    /// <returns>A task completing once done.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await Task.Run(Cleanup).ConfigureAwait(false);
    }

    private static string FindBinary()
    {
        if (LocalProcess.Executable(DefaultBinary) is { } debian)
        {
            return debian;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(d => LocalProcess.Executable(Path.Combine(d, "pgbouncer")))
            .FirstOrDefault(p => p is not null)
            ?? throw new InvalidOperationException(NotFoundMessage);
    }

    private string Ini(string host, int port, string user, PgBouncerOptions options)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["listen_addr"] = "127.0.0.1",
            ["listen_port"] = Port.ToString(CultureInfo.InvariantCulture),
            ["unix_socket_dir"] = string.Empty,
            ["auth_type"] = "trust",
            ["auth_file"] = Path.Combine(_root, "users.txt"),
            ["pidfile"] = _pidFile,
            ["logfile"] = _logFile,
            ["pool_mode"] = options.PoolMode,
            ["default_pool_size"] = options.DefaultPoolSize.ToString(CultureInfo.InvariantCulture),
            ["max_client_conn"] = options.MaxClientConnections.ToString(CultureInfo.InvariantCulture),
            ["ignore_startup_parameters"] = "extra_float_digits,options",
            ["admin_users"] = user,
        };
        if (options.ServerLifetime is { } lifetime)
        {
            settings["server_lifetime"] = Seconds(lifetime);
        }

        if (options.ServerIdleTimeout is { } idle)
        {
            settings["server_idle_timeout"] = Seconds(idle);
        }

        foreach (var (key, value) in options.Settings)
        {
            settings[key] = value;
        }

        var ini = new StringBuilder();
        ini.Append(CultureInfo.InvariantCulture, $"[databases]\n* = host={host} port={port} user={user}\n\n[pgbouncer]\n");
        foreach (var (key, value) in settings)
        {
            ini.Append(CultureInfo.InvariantCulture, $"{key} = {value}\n");
        }

        return ini.ToString();
    }

    private static string Seconds(TimeSpan value) => Math.Max(1, (long)Math.Ceiling(value.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    private void Launch(string? runuser, string binary)
    {
        var info = LocalProcess.StartInfo(runuser, binary, [_ini]);
        var launcher = new Process { StartInfo = info };
        launcher.OutputDataReceived += (_, _) => { };
        launcher.ErrorDataReceived += (_, _) => { };
        launcher.Start();
        launcher.BeginOutputReadLine();
        launcher.BeginErrorReadLine();
        lock (_gate)
        {
            _launcher = launcher;
        }

        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    private async Task WaitUntilReadyAsync(PostgresServer server, TimeSpan timeout, CancellationToken ct)
    {
        var probe = new NpgsqlConnectionStringBuilder(ConnectionStringFor(server.ConnectionString)) { Pooling = false, Timeout = 2, MaxAutoPrepare = 0 }.ConnectionString;
        var deadline = DateTime.UtcNow + timeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            ct.ThrowIfCancellationRequested();
            if (_launcher is { HasExited: true } exited)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
                throw new InvalidOperationException($"pgbouncer exited with code {exited.ExitCode} before accepting connections; log tail:\n{LogTail()}");
            }

            _pid = _pid != 0 ? _pid : ReadPid();
            if (_pid != 0)
            {
                try
                {
                    await using var connection = new NpgsqlConnection(probe);
                    await connection.OpenAsync(ct).ConfigureAwait(false);
                    await using var command = new NpgsqlCommand("SELECT 1", connection);
                    await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
                    return;
                }
                catch (Exception e) when (e is NpgsqlException or SocketException or IOException or TimeoutException)
                {
                    last = e;
                }
            }

            await Task.Delay(50, ct).ConfigureAwait(false);
        }

        throw new TimeoutException($"pgbouncer did not accept connections on port {Port} within {timeout.TotalSeconds:0} s (last error: {last?.Message}); log tail:\n{LogTail()}");
    }

    /// <summary>PgBouncer's pid from its pid file, trusted only when that process runs our ini.</summary>
    private int ReadPid()
    {
        try
        {
            var text = File.ReadAllText(_pidFile).Trim();
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && pid > 0 && LocalProcess.CommandLine(pid).Contains(_ini, StringComparison.Ordinal) ? pid : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private void StopCore(int signal)
    {
        Process? launcher;
        lock (_gate)
        {
            launcher = _launcher;
            _launcher = null;
        }

        if (launcher is null)
        {
            return;
        }

        try
        {
            var pid = _pid != 0 ? _pid : ReadPid();
            if (pid == 0)
            {
                // No pid file yet: the child of the launcher that runs our ini.
                pid = LocalProcess.ChildrenOf(launcher.Id).FirstOrDefault(c => LocalProcess.CommandLine(c).Contains(_ini, StringComparison.Ordinal));
            }

            _pid = 0;
            if (pid != 0 && LocalProcess.CommandLine(pid).Contains(_ini, StringComparison.Ordinal))
            {
                _ = LocalProcess.Signal(pid, signal);
                if (!LocalProcess.WaitForPidExit(pid, TimeSpan.FromSeconds(5)) && signal != LocalProcess.SIGKILL)
                {
                    _ = LocalProcess.Signal(pid, LocalProcess.SIGKILL);
                    _ = LocalProcess.WaitForPidExit(pid, TimeSpan.FromSeconds(5));
                }
            }

            if (!launcher.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                _ = LocalProcess.Signal(launcher.Id, LocalProcess.SIGKILL);
                launcher.WaitForExit(TimeSpan.FromSeconds(5));
            }
        }
        finally
        {
            launcher.Dispose();
        }
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Cleanup();
    }

    private void Cleanup()
    {
        try
        {
            StopCore(LocalProcess.SIGTERM);
        }
        finally
        {
            LocalProcess.DeleteFolder(_root);
        }
    }
}
