using Keel.Hosting.Cli;

namespace Keel.Tests.Cli;

/// <summary>The demo's closing lines print commands that work where it ran: a clone, the installed tool, an application.</summary>
public sealed class DemoHintTests : IDisposable
{
    private readonly string _clone = Directory.CreateTempSubdirectory("keel-clone-").FullName;

    [Fact]
    public void From_a_clone_the_commands_go_through_dotnet_run()
    {
        Directory.CreateDirectory(Path.Combine(_clone, "src", "Keel.Cli"));
        File.WriteAllText(Path.Combine(_clone, "src", "Keel.Cli", "Keel.Cli.csproj"), "<Project />");
        var lines = Demo.LookAround("keel-demo.db", fromEnvironment: false, _clone, path: "/usr/bin:/bin", entryAssembly: "Keel.Cli");
        Assert.Equal(
            ["Look around:", "  dotnet run --project src/Keel.Cli -- status -d keel-demo.db", "  dotnet run --project src/Keel.Cli -- jobs list -d keel-demo.db", "  dotnet run --project src/Keel.Cli -- jobs show <id> -d keel-demo.db", "  dotnet run --project src/Keel.Cli -- dashboard -d keel-demo.db"],
            lines);
    }

    [Fact]
    public void With_the_tool_on_PATH_the_commands_use_it()
    {
        var bin = Directory.CreateDirectory(Path.Combine(_clone, "bin")).FullName;
        File.WriteAllText(Path.Combine(bin, "keel"), "#!/bin/sh\n");
        var lines = Demo.LookAround("keel-demo.db", fromEnvironment: false, _clone, path: "/usr/bin:" + bin, entryAssembly: "Keel.Cli");
        Assert.Equal("  keel status -d keel-demo.db", lines[1]);
        Assert.Equal(5, lines.Count);
    }

    [Fact]
    public void Elsewhere_without_the_tool_it_says_how_to_get_it()
    {
        var lines = Demo.LookAround("keel-demo.db", fromEnvironment: false, _clone, path: "/usr/bin", entryAssembly: "Keel.Cli");
        Assert.Equal("  keel status -d keel-demo.db", lines[1]);
        Assert.Contains("keel is not on PATH", lines[^1], StringComparison.Ordinal);
        Assert.Contains("dotnet run --project src/Keel.Cli --", lines[^1], StringComparison.Ordinal);
        Assert.Contains("dotnet tool install --global Keel.Cli", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public void In_an_application_of_ones_own_the_commands_run_it_and_a_database_from_the_environment_is_not_repeated()
    {
        var lines = Demo.LookAround(null, fromEnvironment: true, _clone, path: "/usr/bin", entryAssembly: "MyShop.Worker");
        Assert.Equal(["Look around:", "  dotnet run -- status", "  dotnet run -- jobs list", "  dotnet run -- jobs show <id>", "  dotnet run -- dashboard"], lines);
    }

    public void Dispose() => Directory.Delete(_clone, recursive: true);
}
