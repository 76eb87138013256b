using Keel.Cli;
using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.Tests.EndToEnd;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Cli;

/// <summary>The demo's closing lines print commands that work where it ran: a clone, the installed tool, an application.</summary>
public sealed class DemoHintTests : IDisposable
{
    private readonly string _clone = Directory.CreateTempSubdirectory("keel-clone-").FullName;

    [Fact]
    public void From_a_clone_the_commands_go_through_dotnet_run()
    {
        Directory.CreateDirectory(Path.Combine(_clone, "src", "Keel.Tool"));
        File.WriteAllText(Path.Combine(_clone, "src", "Keel.Tool", "Keel.Tool.csproj"), "<Project />");
        var lines = Demo.LookAround("keel-demo.db", fromEnvironment: false, _clone, path: "/usr/bin:/bin", entryAssembly: "Keel.Tool");
        Assert.Equal(
            ["Look around:", "  dotnet run --project src/Keel.Tool -- status -d keel-demo.db", "  dotnet run --project src/Keel.Tool -- jobs list -d keel-demo.db", "  dotnet run --project src/Keel.Tool -- jobs show <id> -d keel-demo.db", "  dotnet run --project src/Keel.Tool -- dashboard -d keel-demo.db"],
            lines);
    }

    [Fact]
    public void With_the_tool_on_PATH_the_commands_use_it()
    {
        var bin = Directory.CreateDirectory(Path.Combine(_clone, "bin")).FullName;
        File.WriteAllText(Path.Combine(bin, "keel"), "#!/bin/sh\n");
        var lines = Demo.LookAround("keel-demo.db", fromEnvironment: false, _clone, path: "/usr/bin:" + bin, entryAssembly: "Keel.Tool");
        Assert.Equal("  keel status -d keel-demo.db", lines[1]);
        Assert.Equal(5, lines.Count);
    }

    [Fact]
    public void Elsewhere_without_the_tool_it_says_how_to_get_it()
    {
        var lines = Demo.LookAround("keel-demo.db", fromEnvironment: false, _clone, path: "/usr/bin", entryAssembly: "Keel.Tool");
        Assert.Equal("  keel status -d keel-demo.db", lines[1]);
        Assert.Contains("keel is not on PATH", lines[^1], StringComparison.Ordinal);
        Assert.Contains("dotnet run --project src/Keel.Tool --", lines[^1], StringComparison.Ordinal);
        Assert.Contains("dotnet tool install --global Keel.Tool", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public void In_an_application_of_ones_own_the_commands_run_it_and_a_database_from_the_environment_is_not_repeated()
    {
        var lines = Demo.LookAround(null, fromEnvironment: true, _clone, path: "/usr/bin", entryAssembly: "MyShop.Worker");
        Assert.Equal(["Look around:", "  dotnet run -- status", "  dotnet run -- jobs list", "  dotnet run -- jobs show <id>", "  dotnet run -- dashboard"], lines);
    }

    public void Dispose() => Directory.Delete(_clone, recursive: true);
}

/// <summary>The demo takes a database like every command, but never one that holds another application's jobs.</summary>
public sealed class DemoDatabaseTests
{
    [Fact]
    public async Task The_demo_refuses_a_given_database_that_holds_other_jobs_and_leaves_it_alone()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        var ids = await db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("count", "default", "{\"n\":1}", 0, 5, null)], null), default);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await KeelCli.RunAsync(["demo", "-d", db.ConnectionString], b => b.Services.AddKeel(k => k.UseSqlite().UsePostgreSql().AddDemoJobs().AddJob<CountingJob>()), output, error);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("the demo runs its own workers, so it needs a database of its own", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("holds other jobs", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(JobState.Ready, (await db.Storage.JobGetAsync(ids[0], default))!.State); // not deleted, not run
    }
}
