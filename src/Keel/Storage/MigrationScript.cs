using System.Globalization;
using System.Reflection;

namespace Keel.Storage;

/// <summary>One versioned schema change shipped inside a storage package as an embedded <c>.sql</c> file.</summary>
/// <param name="Version">The version it brings the schema to (1, 2, …).</param>
/// <param name="Name">The file name without the number, e.g. <c>initial</c>.</param>
/// <param name="Sql">The statements.</param>
public sealed record MigrationScript(int Version, string Name, string Sql)
{
    /// <summary>
    /// Loads the embedded resources of <paramref name="assembly"/> whose names end in <c>.Migrations.NNNN_name.sql</c>,
    /// ordered by version, and checks that versions run 1, 2, 3… without gaps.
    /// </summary>
    /// <param name="assembly">The storage assembly.</param>
    /// <returns>The scripts in version order.</returns>
    public static IReadOnlyList<MigrationScript> LoadEmbedded(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        var scripts = new List<MigrationScript>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            const string marker = ".Migrations.";
            var at = resource.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0 || !resource.EndsWith(".sql", StringComparison.Ordinal))
            {
                continue;
            }

            var file = resource[(at + marker.Length)..^4];
            var underscore = file.IndexOf('_', StringComparison.Ordinal);
            var version = int.Parse(file[..underscore], NumberStyles.None, CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            scripts.Add(new MigrationScript(version, file[(underscore + 1)..], reader.ReadToEnd()));
        }

        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < scripts.Count; i++)
        {
            if (scripts[i].Version != i + 1)
            {
                throw new InvalidOperationException($"migration versions in {assembly.GetName().Name} must run 1, 2, 3… without gaps; found {scripts[i].Version} at position {i + 1}");
            }
        }

        return scripts;
    }

    /// <summary>The error for a database whose schema is newer than the code.</summary>
    /// <param name="engine">The engine name.</param>
    /// <param name="databaseVersion">The database's version.</param>
    /// <param name="codeVersion">The newest version this code knows.</param>
    /// <returns>The exception to throw.</returns>
    public static KeelSchemaException NewerThanCode(string engine, int databaseVersion, int codeVersion)
        => new($"the {engine} database is at Keel schema version {databaseVersion}, newer than this Keel build supports ({codeVersion}); upgrade Keel in this application before running it against this database");
}
