using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Keel.TestInfrastructure;

/// <summary>Settings for <see cref="PostgresServer.StartAsync"/>.</summary>
public sealed class PostgresServerOptions
{
    /// <summary>Fast, non-durable settings for tests: never use for anything that must survive a crash.</summary>
    public static IReadOnlyDictionary<string, string> TestSettings { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["fsync"] = "off",
        ["synchronous_commit"] = "off",
        ["full_page_writes"] = "off",
        ["max_connections"] = "300",
        ["shared_buffers"] = "128MB",
    };

    /// <summary>
    /// <see cref="TestSettings"/> that keep every acknowledged commit across a crash of PostgreSQL itself
    /// (<see cref="PostgresServer.CrashRestartAsync"/>, <see cref="PostgresServer.KillAsync"/>): commits are written to
    /// the WAL before they are acknowledged (<c>synchronous_commit=on</c>), though never flushed to disk (<c>fsync=off</c>),
    /// which only a crash of the machine would need. With <see cref="TestSettings"/> a crash loses the last commits.
    /// </summary>
    public static IReadOnlyDictionary<string, string> CrashSafeTestSettings { get; } = new Dictionary<string, string>(TestSettings, StringComparer.Ordinal)
    {
        ["synchronous_commit"] = "on",
    };

    /// <summary>Durable settings (PostgreSQL defaults for durability) for benchmarks.</summary>
    public static IReadOnlyDictionary<string, string> DurableSettings { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["max_connections"] = "300",
        ["shared_buffers"] = "128MB",
    };

    /// <summary>
    /// The <c>-c name=value</c> settings passed to <c>postgres</c>. Replaces the defaults entirely
    /// (<see cref="TestSettings"/> unless set).
    /// </summary>
    public IDictionary<string, string> Settings { get; set; } = new Dictionary<string, string>(TestSettings, StringComparer.Ordinal);

    /// <summary>
    /// What <see cref="Replication"/> adds to <see cref="Settings"/> (a setting already there wins): WAL for
    /// streaming standbys, and enough of it kept for one started a few seconds after its base backup.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ReplicationSettings { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["wal_level"] = "replica",
        ["max_wal_senders"] = "10",
        ["max_replication_slots"] = "10",
        ["wal_keep_size"] = "256MB",
        ["hot_standby"] = "on",
    };

    /// <summary>How long to wait for the server to accept connections.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Make the server a primary that <see cref="PostgresServer.StartStandbyAsync"/> can copy and stream from: adds
    /// <see cref="ReplicationSettings"/> and a <c>host replication</c> line to pg_hba.conf. Default false.
    /// </summary>
    public bool Replication { get; set; }
}

/// <summary>
/// A throwaway PostgreSQL server in a temp folder (<c>keel-pg-*</c>) for tests and benchmarks, or, when the
/// environment variable <c>KEEL_TEST_POSTGRES</c> holds a connection string, that existing server.
/// </summary>
public sealed partial class PostgresServer : IAsyncDisposable
{
    /// <summary>The environment variable naming an existing server to use instead of starting one.</summary>
    public const string EnvironmentVariable = "KEEL_TEST_POSTGRES";

    private const int SIGINT = LocalProcess.SIGINT;
    private const int SIGKILL = LocalProcess.SIGKILL;

    private const string NotFoundMessage =
        "PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin: install them (apt-get install -y postgresql) or set KEEL_TEST_POSTGRES to a connection string";

    private readonly object _gate = new();
    private readonly string? _root;
    private readonly string? _externalConnectionString;
    private readonly string? _postgresBinary;
    private readonly string? _runuser;
    private readonly string? _logFile;
    private readonly TimeSpan _startTimeout;
    private Process? _process;
    private int _postmasterPid;
    private bool _disposed;
    private bool _exitHooked;

    private PostgresServer(string connectionString, int port, IReadOnlyDictionary<string, string> settings)
    {
        _externalConnectionString = connectionString;
        Port = port;
        DataDirectory = string.Empty;
        Settings = settings;
    }

    private PostgresServer(string root, string postgresBinary, string? runuser, int port, IReadOnlyDictionary<string, string> settings, TimeSpan startTimeout)
    {
        _root = root;
        _postgresBinary = postgresBinary;
        _runuser = runuser;
        _startTimeout = startTimeout;
        _logFile = Path.Combine(root, "postgres.log");
        DataDirectory = Path.Combine(root, "data");
        SocketDirectory = Path.Combine(root, "sock");
        Port = port;
        Settings = settings;
    }

    /// <summary>A connection string to the <c>postgres</c> database as user <c>postgres</c>.</summary>
    public string ConnectionString => _externalConnectionString ?? BuildConnectionString("127.0.0.1", Port, "postgres");

    /// <summary>The TCP port the server listens on (127.0.0.1).</summary>
    public int Port { get; private set; }

    /// <summary>The server's data directory; empty when using <c>KEEL_TEST_POSTGRES</c>.</summary>
    public string DataDirectory { get; }

    /// <summary>The folder holding the server's Unix socket; null when using <c>KEEL_TEST_POSTGRES</c>.</summary>
    public string? SocketDirectory { get; }

    /// <summary>The <c>-c</c> settings the server was started with (empty for an external server).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; }

    /// <summary>True when this is an existing server named by <c>KEEL_TEST_POSTGRES</c>.</summary>
    public bool IsExternal => _root is null;

    /// <summary>The real postmaster's OS process id (0 when external or stopped).</summary>
    public int PostmasterPid => _postmasterPid;

    /// <summary>
    /// Starts a fresh server (initdb into a new temp folder, free port), or wraps the server named by
    /// <c>KEEL_TEST_POSTGRES</c>.
    /// </summary>
    /// <param name="options">Settings; null for test defaults.</param>
    /// <param name="ct">Cancels the start.</param>
    /// <returns>The running server.</returns>
    public static async Task<PostgresServer> StartAsync(PostgresServerOptions? options = null, CancellationToken ct = default)
    {
        options ??= new PostgresServerOptions();
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            var builder = new NpgsqlConnectionStringBuilder(external);
            var server = new PostgresServer(external, builder.Port, new Dictionary<string, string>(StringComparer.Ordinal));
            await server.WaitUntilAcceptingAsync(TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            return server;
        }

        var (initdb, postgres) = FindBinaries();
        var asRoot = LocalProcess.IsRoot();
        string? runuser = null;
        if (asRoot)
        {
            runuser = LocalProcess.FindRunuser()
                ?? throw new InvalidOperationException("running as root, PostgreSQL must run as the 'postgres' user, but 'runuser' was not found: install util-linux or set KEEL_TEST_POSTGRES to a connection string");
        }

        var root = Path.Combine(Path.GetTempPath(), "keel-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(Path.Combine(root, "sock"));
        var settings = new Dictionary<string, string>(options.Settings, StringComparer.Ordinal);
        if (options.Replication)
        {
            foreach (var (key, value) in PostgresServerOptions.ReplicationSettings)
            {
                settings.TryAdd(key, value);
            }
        }

        var created = new PostgresServer(root, postgres, runuser, LocalProcess.FreePort(), settings, options.StartTimeout);
        try
        {
            if (asRoot)
            {
                await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(null, "chown", ["-R", "postgres:postgres", root]), ct).ConfigureAwait(false);
            }

            var initArgs = new List<string> { "-D", created.DataDirectory, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C" };
            await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(runuser, initdb, initArgs), ct).ConfigureAwait(false);
            if (options.Replication)
            {
                await File.AppendAllTextAsync(Path.Combine(created.DataDirectory, "pg_hba.conf"), "\nhost replication all 127.0.0.1/32 trust\n", ct).ConfigureAwait(false);
            }

            created.HookProcessExit();
            await created.LaunchAsync(allowNewPort: true, ct).ConfigureAwait(false);
            return created;
        }
        catch
        {
            await created.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates a fresh database with a unique name (or <paramref name="name"/>) and returns a connection string to it.</summary>
    /// <param name="name">The database name; null for <c>keel_test_*</c>.</param>
    /// <param name="ct">Cancels the wait.</param>
    /// <returns>A connection string to the new database.</returns>
    public async Task<string> CreateDatabaseAsync(string? name = null, CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        name ??= "keel_test_" + Guid.NewGuid().ToString("N")[..16];
        var admin = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false };
        await using (var connection = new NpgsqlConnection(admin.ConnectionString))
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = "CREATE DATABASE \"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Stops the server with a fast shutdown (SIGINT), keeping its data directory.</summary>
    /// <returns>A task completing once the server has exited.</returns>
    public async Task StopAsync()
    {
        ThrowIfExternal("stop");
        await Task.Run(() => StopCore(SIGINT, TimeSpan.FromSeconds(15))).ConfigureAwait(false);
    }

    /// <summary>Kills the postmaster with SIGKILL (a crash), keeping its data directory.</summary>
    /// <returns>A task completing once the postmaster has gone.</returns>
    public async Task KillAsync()
    {
        ThrowIfExternal("kill");
        await Task.Run(() => StopCore(SIGKILL, TimeSpan.FromSeconds(15))).ConfigureAwait(false);
    }

    /// <summary>Starts the server again on the same port and data directory after <see cref="StopAsync"/> or <see cref="KillAsync"/>.</summary>
    /// <returns>A task completing once the server accepts connections.</returns>
    public async Task StartAgainAsync()
    {
        ThrowIfExternal("restart");
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_process is not null)
        {
            throw new InvalidOperationException("the server is still running; call StopAsync or KillAsync first");
        }

        await LaunchAsync(allowNewPort: false, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Stops the server (if this instance started it) and deletes its temp folder.</summary>
    /// <returns>A task completing once done.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_root is null)
        {
            return;
        }

        await Task.Run(() => Cleanup()).ConfigureAwait(false);
        if (_exitHooked)
        {
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            _exitHooked = false;
        }
    }

    /// <summary>The last lines of the server log, for diagnostics.</summary>
    /// <param name="lines">How many lines.</param>
    /// <returns>The tail of the log, or an empty string.</returns>
    public string LogTail(int lines = 40) => LocalProcess.LogTail(_logFile, lines);

    private static string BuildConnectionString(string host, int port, string database)
        => new NpgsqlConnectionStringBuilder
        {
            Host = host,
            Port = port,
            Username = "postgres",
            Database = database,
        }.ConnectionString;

    private void ThrowIfExternal(string what)
    {
        if (_root is null)
        {
            throw new NotSupportedException($"cannot {what} the PostgreSQL server: it is the external server named by {EnvironmentVariable}, which this test run did not start; unset {EnvironmentVariable} to run tests that {what} the database");
        }
    }

    private async Task LaunchAsync(bool allowNewPort, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + _startTimeout;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var process = StartPostmasterProcess();
            lock (_gate)
            {
                _process = process;
            }

            var exitedEarly = false;
            try
            {
                exitedEarly = await WaitUntilReadyAsync(process, deadline, ct).ConfigureAwait(false);
            }
            catch
            {
                StopCore(SIGKILL, TimeSpan.FromSeconds(5));
                throw;
            }

            if (!exitedEarly)
            {
                _postmasterPid = ReadPostmasterPid() ?? 0;
                return;
            }

            // The postmaster exited before accepting connections.
            lock (_gate)
            {
                _process = null;
            }

            process.Dispose();
            var tail = LogTail();
            var retryable = tail.Contains("could not bind", StringComparison.OrdinalIgnoreCase)
                || tail.Contains("could not create any TCP/IP sockets", StringComparison.OrdinalIgnoreCase)
                || tail.Contains("shared memory block is still in use", StringComparison.OrdinalIgnoreCase)
                || tail.Contains("lock file", StringComparison.OrdinalIgnoreCase);
            if (!retryable || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"PostgreSQL failed to start (data {DataDirectory}, port {Port}); server log tail:\n{tail}");
            }

            if (allowNewPort && tail.Contains("bind", StringComparison.OrdinalIgnoreCase))
            {
                Port = LocalProcess.FreePort();
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    private Process StartPostmasterProcess()
    {
        var args = new List<string>
        {
            "-D", DataDirectory,
            "-p", Port.ToString(CultureInfo.InvariantCulture),
            "-k", SocketDirectory!,
            "-c", "listen_addresses=127.0.0.1",
        };
        foreach (var (key, value) in Settings)
        {
            args.Add("-c");
            args.Add(key + "=" + value);
        }

        var info = new ProcessStartInfo(_runuser ?? _postgresBinary!)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = false,
        };
        if (_runuser is not null)
        {
            info.ArgumentList.Add("-u");
            info.ArgumentList.Add("postgres");
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(_postgresBinary!);
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var log = new StreamWriter(new FileStream(_logFile!, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete), new UTF8Encoding(false))
        {
            AutoFlush = true,
        };
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        DataReceivedEventHandler write = (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (log)
            {
                try
                {
                    log.WriteLine(e.Data);
                }
                catch (ObjectDisposedException)
                {
                }
                catch (IOException)
                {
                }
            }
        };
        process.OutputDataReceived += write;
        process.ErrorDataReceived += write;
        process.Exited += (_, _) =>
        {
            // Let the output pumps drain, then close the log.
            _ = Task.Delay(500).ContinueWith(
                _ =>
                {
                    lock (log)
                    {
                        log.Dispose();
                    }
                },
                TaskScheduler.Default);
        };
        process.Start();
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return process;
    }

    /// <summary>Polls until a connection succeeds; returns true when the process exited first.</summary>
    private async Task<bool> WaitUntilReadyAsync(Process process, DateTime deadline, CancellationToken ct)
    {
        var probe = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 2 }.ConnectionString;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            ct.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                // Give the log pump a moment to write the reason.
                await Task.Delay(100, ct).ConfigureAwait(false);
                return true;
            }

            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync(ct).ConfigureAwait(false);
                return false;
            }
            catch (Exception e) when (e is NpgsqlException or SocketException or IOException or TimeoutException)
            {
                last = e;
            }

            await Task.Delay(50, ct).ConfigureAwait(false);
        }

        throw new TimeoutException($"PostgreSQL did not accept connections within {_startTimeout.TotalSeconds:0} s (data {DataDirectory}, port {Port}; last error: {last?.Message}); server log tail:\n{LogTail()}");
    }

    private async Task WaitUntilAcceptingAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        var probe = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString;
        while (true)
        {
            try
            {
                await using var connection = new NpgsqlConnection(probe);
                await connection.OpenAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is NpgsqlException or SocketException or IOException or TimeoutException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is NpgsqlException or SocketException or IOException or TimeoutException)
            {
                throw new InvalidOperationException($"cannot connect to the PostgreSQL server named by {EnvironmentVariable}: {e.Message}", e);
            }
        }
    }

    private int? ReadPostmasterPid()
    {
        try
        {
            var path = Path.Combine(DataDirectory, "postmaster.pid");
            if (!File.Exists(path))
            {
                return null;
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var first = reader.ReadLine();
            var second = reader.ReadLine();

            // Line 2 is the data directory: only trust a lock file that names ours.
            if (second is not null && !string.Equals(second.TrimEnd('/'), DataDirectory.TrimEnd('/'), StringComparison.Ordinal))
            {
                return null;
            }

            return int.TryParse(first, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && pid > 0 ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Signals the postmaster this instance started and waits for it (and the launcher) to exit.</summary>
    private void StopCore(int signal, TimeSpan timeout)
    {
        Process? process;
        lock (_gate)
        {
            process = _process;
            _process = null;
        }

        if (process is null)
        {
            return;
        }

        var pid = _postmasterPid != 0 ? _postmasterPid : (ReadPostmasterPid() ?? 0);
        _postmasterPid = 0;
        try
        {
            if (pid != 0 && IsOurPostmaster(pid))
            {
                var children = signal == SIGKILL ? LocalProcess.ChildrenOf(pid) : [];
                _ = LocalProcess.Signal(pid, signal);
                if (!LocalProcess.WaitForPidExit(pid, timeout) && signal != SIGKILL)
                {
                    children = LocalProcess.ChildrenOf(pid);
                    _ = LocalProcess.Signal(pid, SIGKILL);
                    _ = LocalProcess.WaitForPidExit(pid, TimeSpan.FromSeconds(5));
                }

                // After a SIGKILL the backends notice the postmaster's death and exit on their own; wait for
                // them so a restart does not find the old shared memory still in use.
                foreach (var child in children)
                {
                    _ = LocalProcess.WaitForPidExit(child, TimeSpan.FromSeconds(10));
                }
            }
            else if (!process.HasExited)
            {
                // No trustworthy postmaster.pid: signal the process we launched directly.
                _ = LocalProcess.Signal(process.Id, signal);
            }

            if (!process.WaitForExit(TimeSpan.FromSeconds(signal == SIGKILL ? 5 : 15)))
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }

                process.WaitForExit(TimeSpan.FromSeconds(5));
            }
        }
        finally
        {
            process.Dispose();
        }
    }

    private bool IsOurPostmaster(int pid)
    {
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains(DataDirectory, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private void HookProcessExit()
    {
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        _exitHooked = true;
    }

    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Cleanup(atExit: true);
    }

    /// <summary>
    /// Stops the server and deletes its folder. At process exit (a server nobody disposed, like the test run's
    /// shared one) the test host may be killed moments later: the server gets an immediate shutdown (no checkpoint,
    /// its data is thrown away) and the folder is removed by a separate <c>rm</c> that outlives this process.
    /// </summary>
    private void Cleanup(bool atExit = false)
    {
        try
        {
            StopCore(atExit ? LocalProcess.SIGQUIT : SIGINT, TimeSpan.FromSeconds(10));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            if (atExit)
            {
                LocalProcess.DeleteFolderDetached(_root);
            }
            else
            {
                LocalProcess.DeleteFolder(_root);
            }
        }
    }

    private static (string Initdb, string Postgres) FindBinaries()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        string? initdb = null;
        string? postgres = null;
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            initdb ??= LocalProcess.Executable(Path.Combine(dir, "initdb"));
            postgres ??= LocalProcess.Executable(Path.Combine(dir, "postgres"));
        }

        if (initdb is not null && postgres is not null)
        {
            return (initdb, postgres);
        }

        const string lib = "/usr/lib/postgresql";
        if (Directory.Exists(lib))
        {
            var newest = Directory.EnumerateDirectories(lib)
                .Select(d => (Dir: d, Version: decimal.TryParse(Path.GetFileName(d), NumberStyles.Number, CultureInfo.InvariantCulture, out var v) ? v : -1m))
                .OrderByDescending(x => x.Version)
                .Select(x => (Initdb: LocalProcess.Executable(Path.Combine(x.Dir, "bin", "initdb")), Postgres: LocalProcess.Executable(Path.Combine(x.Dir, "bin", "postgres"))))
                .FirstOrDefault(x => x.Initdb is not null && x.Postgres is not null);
            if (newest.Initdb is not null && newest.Postgres is not null)
            {
                return (newest.Initdb, newest.Postgres);
            }
        }

        throw new InvalidOperationException(NotFoundMessage);
    }

}
