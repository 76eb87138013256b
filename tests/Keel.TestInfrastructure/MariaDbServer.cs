using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using MySqlConnector;

namespace Keel.TestInfrastructure;

/// <summary>
/// A throwaway MariaDB server in a temp folder (<c>keel-mariadb-*</c>) for tests and benchmarks, or, when the
/// environment variable <c>KEEL_TEST_MYSQL</c> holds a connection string, that existing server. It runs with durable
/// settings (<c>innodb_flush_log_at_trx_commit=1</c>, the default), as the <c>mysql</c> user when the tests run as root,
/// on a free TCP port of 127.0.0.1 and its own socket in the temp folder; tests reach it over TCP as a user with a
/// password (no <c>--skip-grant-tables</c>). Disposing it kills the server by its pid and deletes the folder.
/// </summary>
public sealed class MariaDbServer : IAsyncDisposable
{
    /// <summary>The environment variable naming an existing server to use instead of starting one.</summary>
    public const string EnvironmentVariable = "KEEL_TEST_MYSQL";

    private const string User = "keel";
    private const string Password = "keel-test-password";

    private const string NotFoundMessage =
        "MariaDB server binaries (mariadbd, mariadb-install-db) not found in /usr/sbin, /usr/bin or on PATH: install them (apt-get install -y mariadb-server) or set KEEL_TEST_MYSQL to a connection string";

    private readonly string? _root;
    private readonly string? _externalConnectionString;
    private readonly object _gate = new();
    private Process? _process;
    private string? _mariadbd;
    private bool _asRoot;
    private bool _disposed;

    private MariaDbServer(string connectionString)
    {
        _externalConnectionString = connectionString;
    }

    private MariaDbServer(string root, int port)
    {
        _root = root;
        Port = port;
    }

    /// <summary>A connection string to the server (no database) as a user allowed to create databases.</summary>
    public string ConnectionString => _externalConnectionString ?? new MySqlConnectionStringBuilder
    {
        Server = "127.0.0.1",
        Port = (uint)Port,
        UserID = User,
        Password = Password,
    }.ConnectionString;

    /// <summary>The TCP port the server listens on (127.0.0.1); 0 when using <c>KEEL_TEST_MYSQL</c>.</summary>
    public int Port { get; }

    /// <summary>True when this is an existing server named by <c>KEEL_TEST_MYSQL</c>.</summary>
    public bool IsExternal => _root is null;

    /// <summary>The server's OS process id (0 when external or stopped).</summary>
    public int Pid { get; private set; }

    private string DataDirectory => Path.Combine(_root!, "data");

    private string SocketPath => Path.Combine(_root!, "mariadbd.sock");

    private string PidFile => Path.Combine(_root!, "mariadbd.pid");

    private string LogFile => Path.Combine(_root!, "mariadbd.log");

    private string TempDirectory => Path.Combine(_root!, "tmp");

    /// <summary>Starts a fresh server (a new data folder, a free port), or wraps the server named by <c>KEEL_TEST_MYSQL</c>.</summary>
    /// <param name="ct">Cancels the start.</param>
    /// <returns>The running server.</returns>
    public static async Task<MariaDbServer> StartAsync(CancellationToken ct = default)
    {
        var external = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(external))
        {
            var server = new MariaDbServer(external);
            await using var connection = new MySqlConnection(new MySqlConnectionStringBuilder(external) { Pooling = false }.ConnectionString);
            await connection.OpenAsync(ct).ConfigureAwait(false);
            return server;
        }

        var mariadbd = Find("mariadbd", "mysqld") ?? throw new InvalidOperationException(NotFoundMessage);
        var installDb = Find("mariadb-install-db", "mysql_install_db") ?? throw new InvalidOperationException(NotFoundMessage);
        var root = Path.Combine(Path.GetTempPath(), "keel-mariadb-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        var created = new MariaDbServer(root, LocalProcess.FreePort());
        try
        {
            var asRoot = LocalProcess.IsRoot();
            // Its own temporary folder: the inherited TMPDIR may be one only root can write (CI's is mode 755).
            Directory.CreateDirectory(created.TempDirectory);
            if (asRoot)
            {
                // mariadbd refuses to run as root; it switches to this user itself (--user).
                await EnsureMysqlUserAsync(ct).ConfigureAwait(false);
                await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(null, "chown", ["-R", "mysql:mysql", root]), ct).ConfigureAwait(false);
            }

            var install = new List<string>
            {
                "--no-defaults", "--datadir=" + created.DataDirectory, "--auth-root-authentication-method=normal",
                "--skip-test-db", "--skip-name-resolve",
            };
            if (asRoot)
            {
                install.Add("--user=mysql");
            }

            install.Add("--tmpdir=" + created.TempDirectory);
            var installInfo = LocalProcess.StartInfo(null, installDb, install);
            installInfo.Environment["TMPDIR"] = created.TempDirectory;
            await LocalProcess.RunToEndAsync(installInfo, ct).ConfigureAwait(false);
            AppDomain.CurrentDomain.ProcessExit += created.OnProcessExit;
            created.Launch(mariadbd, asRoot);
            await created.WaitUntilReadyAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
            await created.CreateUserAsync(ct).ConfigureAwait(false);
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
        await ExecuteAsync("CREATE DATABASE `" + name.Replace("`", "``", StringComparison.Ordinal) + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", ct).ConfigureAwait(false);
        return new MySqlConnectionStringBuilder(ConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>Drops a database made by <see cref="CreateDatabaseAsync"/> (its tables' files go with it).</summary>
    /// <param name="name">The database name.</param>
    /// <param name="ct">Cancels the wait.</param>
    /// <returns>A task completing once done.</returns>
    public Task DropDatabaseAsync(string name, CancellationToken ct = default)
        => _disposed ? Task.CompletedTask : ExecuteAsync("DROP DATABASE IF EXISTS `" + name.Replace("`", "``", StringComparison.Ordinal) + "`", ct);

    /// <summary>The last lines of the server log, for diagnostics.</summary>
    /// <param name="lines">How many lines.</param>
    /// <returns>The tail of the log, or an empty string.</returns>
    public string LogTail(int lines = 40) => _root is null ? string.Empty : LocalProcess.LogTail(LogFile, lines);

    /// <summary>Kills the server (if this instance started it) by its pid and deletes its temp folder.</summary>
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

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        await Task.Run(() => Cleanup(atExit: false)).ConfigureAwait(false);
    }

    private static string? Find(params string[] names)
    {
        foreach (var name in names)
        {
            foreach (var folder in new[] { "/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin" }
                .Concat((Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)))
            {
                var path = Path.Combine(folder, name);
                if (File.Exists(path))
                {
                    return path;
                }
            }
        }

        return null;
    }

    private static async Task EnsureMysqlUserAsync(CancellationToken ct)
    {
        try
        {
            await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(null, "id", ["mysql"]), ct).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            await LocalProcess.RunToEndAsync(LocalProcess.StartInfo(null, "useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "mysql"]), ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Crashes the server: SIGKILL by its pid, as an OOM kill or a power loss would; its data folder stays, and
    /// <see cref="StartAgainAsync"/> runs InnoDB's crash recovery on it.
    /// </summary>
    /// <returns>A task completing once the process is gone.</returns>
    public Task CrashAsync()
    {
        Process? process;
        lock (_gate)
        {
            process = _process ?? throw new InvalidOperationException("the server is not running (or is not one this instance started)");
            _process = null;
        }

        _ = LocalProcess.Signal(process.Id, LocalProcess.SIGKILL);
        _ = LocalProcess.WaitForPidExit(process.Id, TimeSpan.FromSeconds(10));
        process.Dispose();
        Pid = 0;
        return Task.CompletedTask;
    }

    /// <summary>Starts the crashed or stopped server again on the same data folder and port.</summary>
    /// <param name="ct">Cancels the wait.</param>
    /// <returns>A task completing once it accepts connections.</returns>
    public async Task StartAgainAsync(CancellationToken ct = default)
    {
        Launch(_mariadbd ?? throw new InvalidOperationException("the server was never started by this instance"), _asRoot);
        await WaitUntilReadyAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
    }

    private void Launch(string mariadbd, bool asRoot)
    {
        _mariadbd = mariadbd;
        _asRoot = asRoot;
        var info = new ProcessStartInfo(mariadbd)
        {
            UseShellExecute = false,
            RedirectStandardOutput = false,
            RedirectStandardError = false,
        };
        var args = new List<string>
        {
            "--no-defaults",
            "--datadir=" + DataDirectory,
            "--socket=" + SocketPath,
            "--pid-file=" + PidFile,
            "--log-error=" + LogFile,
            "--tmpdir=" + TempDirectory,
            "--port=" + Port.ToString(CultureInfo.InvariantCulture),
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=1",
            "--innodb-buffer-pool-size=256M",
            "--max-connections=1000",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_bin",
        };
        if (asRoot)
        {
            args.Add("--user=mysql");
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["TMPDIR"] = TempDirectory;
        lock (_gate)
        {
            _process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {mariadbd}");
            Pid = _process.Id;
        }
    }

    private async Task WaitUntilReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        var probe = AdminSocketConnectionString();
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            ct.ThrowIfCancellationRequested();
            if (_process is { HasExited: true })
            {
                throw new InvalidOperationException($"MariaDB exited before accepting connections (data {DataDirectory}, port {Port}); server log tail:\n{LogTail()}");
            }

            try
            {
                await using var connection = new MySqlConnection(probe);
                await connection.OpenAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is MySqlException or SocketException or IOException or TimeoutException)
            {
                last = e;
            }

            await Task.Delay(100, ct).ConfigureAwait(false);
        }

        throw new TimeoutException($"MariaDB did not accept connections within {timeout.TotalSeconds:0} s (data {DataDirectory}, port {Port}; last error: {last?.Message}); server log tail:\n{LogTail()}");
    }

    /// <summary>Root on the server's own socket (root has no password there yet, and no TCP access).</summary>
    private string AdminSocketConnectionString() => new MySqlConnectionStringBuilder
    {
        Server = SocketPath,
        ConnectionProtocol = MySqlConnectionProtocol.UnixSocket,
        UserID = "root",
        Pooling = false,
        ConnectionTimeout = 2,
    }.ConnectionString;

    /// <summary>The tests' user: a password, reached over TCP, allowed everything (it creates and drops databases).</summary>
    private async Task CreateUserAsync(CancellationToken ct)
    {
        await using var connection = new MySqlConnection(AdminSocketConnectionString());
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"CREATE USER '{User}'@'%' IDENTIFIED BY '{Password}'; GRANT ALL PRIVILEGES ON *.* TO '{User}'@'%' WITH GRANT OPTION";
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task ExecuteAsync(string sql, CancellationToken ct)
    {
        await using var connection = new MySqlConnection(new MySqlConnectionStringBuilder(ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(ct).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
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
    /// Kills the server we launched (by the pid we got when launching it) and deletes the folder; at the test host's
    /// exit with a detached <c>rm -rf</c>, which finishes even if the host is killed right after.
    /// </summary>
    private void Cleanup(bool atExit)
    {
        Process? process;
        lock (_gate)
        {
            process = _process;
            _process = null;
        }

        if (process is not null)
        {
            if (!process.HasExited)
            {
                _ = LocalProcess.Signal(process.Id, LocalProcess.SIGKILL);
                _ = LocalProcess.WaitForPidExit(process.Id, TimeSpan.FromSeconds(10));
            }

            process.Dispose();
        }

        Pid = 0;
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
