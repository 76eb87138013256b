using System.Xml.Linq;
using Keel.Dashboard;
using Keel.Hosting;

namespace Keel.Tests.Unit;

/// <summary>
/// The libraries an application references choose no engine: Keel.Hosting and Keel.Dashboard reference Core only, so an
/// application carries the drivers of the store packages it adds and no others. The keel tool alone ships every engine.
/// </summary>
public sealed class PackageGraphTests
{
    /// <summary>Store packages and database drivers, present and to come.</summary>
    private static readonly string[] Stores = ["Keel.Sqlite", "Keel.PostgreSql", "Keel.MySql", "Npgsql", "Microsoft.Data.Sqlite", "SQLitePCLRaw.core", "MySqlConnector"];

    public static TheoryData<string> Libraries => new() { "Keel.Hosting", "Keel.Dashboard" };

    [Theory]
    [MemberData(nameof(Libraries))]
    public void A_library_assembly_references_no_store_and_no_command_line(string library)
    {
        var assembly = library == "Keel.Hosting" ? typeof(KeelServiceCollectionExtensions).Assembly : typeof(KeelDashboardOptions).Assembly;
        var referenced = assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.Contains("Keel", referenced);
        Assert.Empty(referenced.Intersect([.. Stores, "Keel.Cli", "Keel.Hosting", "System.CommandLine", "Spectre.Console"], StringComparer.OrdinalIgnoreCase));
    }

    [Theory]
    [MemberData(nameof(Libraries))]
    public void A_library_project_references_Core_and_framework_packages_only(string library)
    {
        var project = XDocument.Load(Path.Combine(RepositoryRoot(), "src", library, library + ".csproj"));
        var projects = project.Descendants("ProjectReference").Select(r => r.Attribute("Include")!.Value.Replace('\\', '/')).ToList();
        Assert.Equal(["../Keel/Keel.csproj"], projects);
        var packages = project.Descendants("PackageReference").Select(r => r.Attribute("Include")!.Value).ToList();
        Assert.All(packages, package => Assert.StartsWith("Microsoft.Extensions.", package, StringComparison.Ordinal));
    }

    [Fact]
    public void The_conformance_suite_references_Core_and_no_store_so_any_engine_can_run_it()
    {
        var referenced = typeof(Keel.Storage.Conformance.ConformanceTests).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.Contains("Keel", referenced);
        Assert.Empty(referenced.Intersect([.. Stores, "Keel.Cli", "Keel.Hosting"], StringComparer.OrdinalIgnoreCase));
        var project = XDocument.Load(Path.Combine(RepositoryRoot(), "src", "Keel.Storage.Conformance", "Keel.Storage.Conformance.csproj"));
        Assert.Equal(["../Keel/Keel.csproj"], project.Descendants("ProjectReference").Select(r => r.Attribute("Include")!.Value.Replace('\\', '/')));
    }

    private static string RepositoryRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "Keel.sln")))
            {
                return folder.FullName;
            }
        }

        throw new InvalidOperationException($"Keel.sln not found above {AppContext.BaseDirectory}: run the tests from a clone");
    }
}
