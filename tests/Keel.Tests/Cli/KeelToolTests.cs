using System.Diagnostics;
using System.Text.Json;
using Keel.Cli;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Xunit.Abstractions;

namespace Keel.Tests.Cli;

/// <summary>The real keel executable: the demo from start to summary, and commands through a real process.</summary>
[Collection(RealProcesses.Name)]
public sealed class KeelToolTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("keel-tool-").FullName;

    private async Task<(int Code, string Out, string Err)> KeelAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Keel.Tool.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Close(); // nobody at the keyboard: confirmations must be refused, not waited for
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(150));
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        log.WriteLine($"keel {string.Join(' ', args)} → {process.ExitCode}\n{await output}\n{await error}");
        return (process.ExitCode, await output, await error);
    }

    [Fact]
    public async Task The_demo_runs_on_sqlite_and_accounts_for_every_job()
    {
        var (code, output, error) = await KeelAsync("demo");
        Assert.True(code == 0, $"demo exited {code}: {output}\n{error}");
        Assert.Contains("29 of 29 jobs finished, 0 failed", output, StringComparison.Ordinal);
        Assert.Contains("killed its own worker process", output, StringComparison.Ordinal);
        // Commands that work from here: keel is not on PATH and this folder is no clone, so it says how to get it.
        Assert.Contains("  keel status -d keel-demo.db", output, StringComparison.Ordinal);
        Assert.Contains("keel is not on PATH", output, StringComparison.Ordinal);

        // The demo's database is left for exploring: the commands work on it through the real executable.
        var (listCode, list, _) = await KeelAsync("jobs", "list", "--database", "keel-demo.db", "--state", "finished", "--limit", "100", "--json");
        Assert.Equal(0, listCode);
        Assert.True(JsonDocument.Parse(list).RootElement.GetProperty("jobs").GetArrayLength() >= 29);
        var (statusCode, status, _) = await KeelAsync("status", "--database", "keel-demo.db");
        Assert.Equal(0, statusCode);
        Assert.Contains("Processes", status, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_demo_runs_on_postgresql()
    {
        var server = await SharedPostgres.GetAsync();
        var database = await server.CreateDatabaseAsync();
        var (code, output, error) = await KeelAsync("demo", "--postgres", database);
        Assert.True(code == 0, $"demo exited {code}: {output}\n{error}");
        Assert.Contains("29 of 29 jobs finished, 0 failed", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_demo_runs_on_mariadb_given_a_mysql_uri_and_a_server_string_is_refused()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.MySql, migrate: false);
        var (code, output, error) = await KeelAsync("demo", "--mysql", db.Setting);
        Assert.True(code == 0, $"demo exited {code}: {output}\n{error}");
        Assert.Contains("29 of 29 jobs finished, 0 failed", output, StringComparison.Ordinal);

        var (refused, _, message) = await KeelAsync("demo", "--mysql", db.ConnectionString);
        Assert.Equal(ExitCodes.Usage, refused);
        Assert.Contains("--mysql takes a mysql://user:password@host:port/database URI", message, StringComparison.Ordinal);
        Assert.DoesNotContain("Password=" + new MySqlConnector.MySqlConnectionStringBuilder(db.ConnectionString).Password, message, StringComparison.Ordinal); // hidden
    }

    [Fact]
    public async Task Bulk_actions_ask_for_confirmation_and_refuse_without_a_terminal()
    {
        var path = Path.Combine(_folder, "confirm.db");
        Assert.Equal(0, (await KeelAsync("migrate", "--database", path)).Code);
        var (code, _, error) = await KeelAsync("queues", "clear", "default", "--database", path);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("pass --yes", error, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.InvalidConfiguration, (await KeelAsync("status")).Code); // no database anywhere
        var (unknown, _, unknownError) = await KeelAsync("jobs", "show", "42", "--database", path);
        Assert.Equal(ExitCodes.NotFound, unknown);
        Assert.Equal("keel: there is no job 42", unknownError.Trim());
    }

    [Fact]
    public async Task The_dashboard_command_serves_the_database_until_sigterm()
    {
        var path = Path.Combine(_folder, "dashboard.db");
        Assert.Equal(ExitCodes.SchemaMismatch, (await KeelAsync("dashboard", "--database", path, "--urls", "http://127.0.0.1:0")).Code); // not migrated
        Assert.Equal(0, (await KeelAsync("migrate", "--database", path)).Code);

        // A home folder of its own: ASP.NET Core would keep data-protection keys under ~/.aspnet; the dashboard must not.
        var home = Directory.CreateDirectory(Path.Combine(_folder, "home")).FullName;
        using var process = StartDashboard(home, "--database", path, "--urls", "http://127.0.0.1:0", "--read-only");
        try
        {
            // "Keel dashboard: http://127.0.0.1:41234/  (Ctrl+C to stop)" — the first line, nothing (no warning) before it.
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.StartsWith("Keel dashboard: http://127.0.0.1:", line, StringComparison.Ordinal);
            var url = line!.Split(' ')[2];
            using var http = new HttpClient();
            var overview = await http.GetStringAsync(url);
            Assert.Contains("<h1>Overview</h1>", overview, StringComparison.Ordinal);
            Assert.Contains("read-only", overview, StringComparison.Ordinal);

            Assert.True(Keel.Hosting.Supervision.Posix.Signal(process.Id, Keel.Hosting.Supervision.Posix.SIGTERM));
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, process.ExitCode);
            Assert.Equal("(Ctrl+C to stop)", line.Split("  ")[^1]);
            Assert.Equal(string.Empty, (await process.StandardOutput.ReadToEndAsync()).Trim());
            Assert.DoesNotContain("DataProtection", await process.StandardError.ReadToEndAsync(), StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories)); // no ~/.aspnet/DataProtection-Keys
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task The_dashboard_says_at_start_that_it_serves_only_this_machine_when_bound_to_every_interface()
    {
        var path = Path.Combine(_folder, "open.db");
        Assert.Equal(0, (await KeelAsync("migrate", "--database", path)).Code);
        var home = Directory.CreateDirectory(Path.Combine(_folder, "home-open")).FullName;
        using var process = StartDashboard(home, "--database", path, "--urls", "http://0.0.0.0:0");
        try
        {
            var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.StartsWith("Keel dashboard: http://0.0.0.0:", line, StringComparison.Ordinal);
            var warning = await process.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("listens on http://0.0.0.0:", warning, StringComparison.Ordinal);
            Assert.Contains("answers only requests from this machine (loopback): other machines get 403", warning, StringComparison.Ordinal);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    private Process StartDashboard(string home, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = _folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["HOME"] = home;
        info.Environment["DOTNET_CLI_HOME"] = home;
        foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "Keel.Tool.dll"), "dashboard" }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
