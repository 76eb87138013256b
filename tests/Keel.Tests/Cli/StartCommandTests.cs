using System.Diagnostics;
using Keel.Cli;
using Keel.Hosting.Supervision;
using Keel.Sqlite;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Xunit.Abstractions;

namespace Keel.Tests.Cli;

/// <summary>
/// <c>start</c> takes the database the way every other command does — <c>-d</c>/<c>--database</c>, <c>KEEL_DATABASE</c>,
/// <c>Keel:Database</c> — instead of crashing on <c>-d</c> (it was read as a configuration switch: SIGABRT, exit 134).
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class StartCommandTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("keel-start-").FullName;

    private ProcessStartInfo Keel(IDictionary<string, string>? environment, params string[] args)
    {
        var info = new ProcessStartInfo("/usr/bin/env")
        {
            WorkingDirectory = _folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.Environment.Remove(DatabaseArgument.EnvironmentVariable);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        // SIGINT and SIGQUIT back to their defaults (a background shell may have left them ignored), as SupervisedApp does.
        foreach (var arg in new[] { "--default-signal=INT,QUIT,TERM", "dotnet", Path.Combine(AppContext.BaseDirectory, "Keel.Tool.dll") }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }

        return info;
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(IDictionary<string, string>? environment, params string[] args)
    {
        using var process = Process.Start(Keel(environment, args))!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        log.WriteLine($"keel {string.Join(' ', args)} → {process.ExitCode}\n{await output}\n{await error}");
        return (process.ExitCode, await output, await error);
    }

    /// <summary>Starts the supervisor, waits until its worker registered in <paramref name="path"/>, stops it with SIGTERM.</summary>
    private async Task RunsOnAsync(string path, IDictionary<string, string>? environment, params string[] args)
    {
        using var process = Process.Start(Keel(environment, [.. args, "--Keel:Workers:0:Processes=1", "--Keel:HeartbeatInterval=00:00:00.500", "--Keel:AliveThreshold=00:00:05", "--Logging:LogLevel:Default=Warning"]))!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            var storage = new SqliteStorage(new SqliteStorageOptions { ConnectionString = path });
            await Eventually.WaitUntilAsync(
                async () => !process.HasExited && File.Exists(path) && await storage.SchemaVersionAsync(default) > 0
                    && (await storage.ProcessesListAsync(new Keel.Storage.ProcessesListParams(null, null), default)).Any(p => p.Kind == "Worker"),
                TimeSpan.FromSeconds(60),
                $"a worker registers in {path}");
            Assert.True(Posix.Signal(process.Id, Posix.SIGTERM));
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            log.WriteLine($"keel {string.Join(' ', args)}\n{await output}\n{await error}");
        }
    }

    [Fact]
    public async Task Start_takes_the_database_from_the_database_option()
        => await RunsOnAsync(Path.Combine(_folder, "option.db"), null, "start", "-d", Path.Combine(_folder, "option.db"));

    [Fact]
    public async Task Start_takes_the_database_from_KEEL_DATABASE()
    {
        var path = Path.Combine(_folder, "environment.db");
        await RunsOnAsync(path, new Dictionary<string, string> { [DatabaseArgument.EnvironmentVariable] = path }, "start");
    }

    [Fact]
    public async Task Start_refuses_an_option_it_does_not_know_in_one_line()
    {
        var (code, _, error) = await RunAsync(null, "start", "-x");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.StartsWith("keel: start does not take '-x'", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        (code, _, error) = await RunAsync(null, "start", "--databse", "typo.db");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.StartsWith("keel: start does not take '--databse'", error, StringComparison.Ordinal);
        (code, var help, _) = await RunAsync(null, "start", "--help");
        Assert.Equal(0, code);
        Assert.Contains("-d, --database", help, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_with_an_unreachable_database_fails_after_the_startup_timeout_in_one_line()
    {
        var (code, _, error) = await RunAsync(null, "start", "--database", "Host=127.0.0.1;Port=1;Timeout=2;Database=keel", "--Keel:StartupTimeout=00:00:01");
        Assert.Equal(1, code);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("keel: the postgresql database could not be reached within Keel:StartupTimeout (00:00:01): ", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "-d", "a.db" }, "a.db", new string[0])]
    [InlineData(new[] { "--database", "a.db", "--Keel:Workers:0:Processes=3" }, "a.db", new[] { "--Keel:Workers:0:Processes=3" })]
    [InlineData(new[] { "--database=Host=db;Port=5432", "--Keel:Workers:0:Processes", "3" }, "Host=db;Port=5432", new[] { "--Keel:Workers:0:Processes", "3" })]
    [InlineData(new[] { "--Logging:LogLevel:Default=Error" }, null, new[] { "--Logging:LogLevel:Default=Error" })]
    [InlineData(new[] { "--environment", "Production", "-d", "a.db" }, "a.db", new[] { "--environment", "Production" })]
    public void Start_arguments_are_split_into_the_database_and_settings(string[] args, string? database, string[] settings)
    {
        var (given, hostArgs, help) = DatabaseArgument.SplitStartArgs(args);
        Assert.Equal(database, given);
        Assert.Equal(settings, hostArgs);
        Assert.False(help);
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
