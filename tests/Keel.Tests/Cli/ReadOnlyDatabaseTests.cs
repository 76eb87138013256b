using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Keel.Cli;
using Keel.Sqlite;
using Keel.Storage;
using Keel.Tests.Processes;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace Keel.Tests.Cli;

/// <summary>
/// A SQLite database this user may only read — the file and its folder without write permission, as an operator
/// inspecting another account's queue has it: the reading commands and the read-only dashboard work, a write says
/// what permission is missing (exit 7), and a missing file says that it does not exist. Root may write anything, so
/// as root the commands run as the 'postgres' user (which the test set-up creates).
/// </summary>
[Collection(RealProcesses.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ReadOnlyDatabaseTests(ITestOutputHelper log) : IAsyncLifetime
{
    private readonly string _folder = Path.Combine(Directory.CreateTempSubdirectory("keel-readonly-").FullName, "data");
    private string _path = string.Empty;
    private IReadOnlyList<long> _ids = [];

    private static bool IsRoot => Environment.UserName == "root";

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_folder);
        _path = Path.Combine(_folder, "queue.db");
        var storage = new SqliteStorage(new SqliteStorageOptions { ConnectionString = _path });
        await storage.MigrateAsync(default);
        _ids = await storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, 3).Select(i => new NewJob("count", "mail", "{\"n\":" + i + "}", 0, 5, null))], null), default);
        await storage.QueuePauseAsync(new QueuePauseParams("reports", true, null), default);
        // The last connection to close checkpoints the WAL and removes it, as a database at rest is found.
        SqliteConnection.ClearAllPools();
        Assert.False(File.Exists(_path + "-wal"), "the WAL file should be gone once every connection closed");
        Assert.False(File.Exists(_path + "-shm"), "the shared-memory file should be gone once every connection closed");

        if (IsRoot)
        {
            await RunAsync("chown", "-R", "postgres:postgres", Path.GetDirectoryName(_folder)!);
        }

        File.SetUnixFileMode(Path.GetDirectoryName(_folder)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.SetUnixFileMode(_folder, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    private static async Task RunAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {await process.StandardError.ReadToEndAsync()}");
    }

    /// <summary>The keel executable, run as a user that is not root (root may write anything).</summary>
    private ProcessStartInfo Keel(params string[] args)
    {
        var info = new ProcessStartInfo(IsRoot ? "runuser" : "dotnet")
        {
            WorkingDirectory = Path.GetTempPath(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (IsRoot)
        {
            foreach (var arg in new[] { "-u", "postgres", "--", "env", "HOME=" + Path.GetTempPath(), "dotnet" })
            {
                info.ArgumentList.Add(arg);
            }
        }

        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Keel.Tool.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return info;
    }

    private async Task<(int Code, string Out, string Err)> KeelAsync(params string[] args)
    {
        using var process = Process.Start(Keel(args))!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        log.WriteLine($"keel {string.Join(' ', args)} → {process.ExitCode}\n{await output}\n{await error}");
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task Reading_commands_work_on_a_database_whose_file_and_folder_are_read_only()
    {
        var (code, output, _) = await KeelAsync("status", "--json", "-d", _path);
        Assert.Equal(0, code);
        var queues = JsonDocument.Parse(output).RootElement.GetProperty("queues").EnumerateArray().ToList();
        Assert.Equal(3, queues.Single(q => q.GetProperty("name").GetString() == "mail").GetProperty("ready").GetInt64());
        Assert.True(queues.Single(q => q.GetProperty("name").GetString() == "reports").GetProperty("paused").GetBoolean());

        (code, output, _) = await KeelAsync("jobs", "list", "--json", "-d", _path);
        Assert.Equal(0, code);
        Assert.Equal(3, JsonDocument.Parse(output).RootElement.GetProperty("jobs").GetArrayLength());

        (code, output, _) = await KeelAsync("jobs", "show", _ids[0].ToString(CultureInfo.InvariantCulture), "-d", _path);
        Assert.Equal(0, code);
        Assert.Contains("{\"n\":0}", output, StringComparison.Ordinal);

        Assert.Equal(0, (await KeelAsync("queues", "list", "-d", _path)).Code);
        Assert.False(File.Exists(_path + "-wal"), "reading must not have written anything beside the database");
    }

    [Fact]
    public async Task A_write_fails_naming_the_permission_problem()
    {
        var (code, _, error) = await KeelAsync("queues", "pause", "mail", "-d", _path);
        Assert.Equal(ExitCodes.DatabaseReadOnly, code);
        Assert.Contains($"keel: the SQLite database {_path} is read-only: the file is not writable for this user", error, StringComparison.Ordinal);
        Assert.Contains("Reading works", error, StringComparison.Ordinal);

        // The file writable but not its folder: SQLite cannot create its -wal file beside it, and says so through Keel.
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        (code, _, error) = await KeelAsync("jobs", "discard", _ids[0].ToString(CultureInfo.InvariantCulture), "-d", _path);
        Assert.Equal(ExitCodes.DatabaseReadOnly, code);
        Assert.Contains($"its folder {_folder} is not writable for this user", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_database_file_is_said_to_not_exist()
    {
        var missing = Path.Combine(_folder, "typo.db");
        var (code, _, error) = await KeelAsync("status", "-d", missing);
        Assert.Equal(ExitCodes.SchemaMismatch, code);
        Assert.Equal($"keel: the SQLite database file {missing} does not exist: check the path, or create it with `keel migrate`", error.Trim());
        Assert.False(File.Exists(missing));
    }

    [Fact]
    public async Task The_read_only_dashboard_serves_a_read_only_database()
    {
        using var process = Process.Start(Keel("dashboard", "-d", _path, "--urls", "http://127.0.0.1:0", "--read-only"))!;
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.StartsWith("Keel dashboard: http://127.0.0.1:", line, StringComparison.Ordinal);
            using var http = new HttpClient { BaseAddress = new Uri(line!.Split(' ')[2]) };
            var queues = await http.GetStringAsync("queues");
            Assert.Contains("data-queue=\"mail\"", queues, StringComparison.Ordinal);
            Assert.Contains("data-queue=\"reports\"", queues, StringComparison.Ordinal);
            var job = await http.GetStringAsync($"job/{_ids[1]}");
            Assert.Contains("&quot;n&quot;: 1", job, StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    public Task DisposeAsync()
    {
        var root = Path.GetDirectoryName(_folder)!;
        try
        {
            File.SetUnixFileMode(_folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(root, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.WriteLine($"could not delete {root}: {e.Message}");
        }

        return Task.CompletedTask;
    }
}
