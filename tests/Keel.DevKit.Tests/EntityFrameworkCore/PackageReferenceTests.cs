namespace Keel.EntityFrameworkCore.Tests;

/// <summary>The EF Core helper chooses no engine: an application brings the EF provider and Keel store it uses.</summary>
public sealed class PackageReferenceTests
{
    [Fact]
    public void The_EF_Core_helper_references_Core_and_EF_Core_relational_only()
    {
        var referenced = typeof(KeelDbContextExtensions).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();

        Assert.Contains("Keel", referenced);
        Assert.Contains("Microsoft.EntityFrameworkCore.Relational", referenced);
        Assert.DoesNotContain(referenced, name => name.StartsWith("Keel.", StringComparison.Ordinal)
            || name is "Npgsql" or "Microsoft.Data.Sqlite" or "MySqlConnector"
            || name.StartsWith("Npgsql.EntityFrameworkCore", StringComparison.Ordinal)
            || name.StartsWith("Microsoft.EntityFrameworkCore.Sqlite", StringComparison.Ordinal));
    }
}
