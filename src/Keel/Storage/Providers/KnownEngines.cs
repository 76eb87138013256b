namespace Keel.Storage;

/// <summary>
/// The engines Keel's own packages provide and the forms that name each one unambiguously, so that a setting for an
/// engine whose package is missing says which package to add instead of "unknown".
/// </summary>
internal static class KnownEngines
{
    public static readonly IReadOnlyList<KnownEngine> All =
    [
        new("sqlite", "SQLite", "Keel.Sqlite", "UseSqlite()", ["sqlite"], ["Data Source", "DataSource", "Filename"], null),
        new("postgresql", "PostgreSQL", "Keel.PostgreSql", "UsePostgreSql()", ["postgres", "postgresql"], ["Host"], "PostgreSql"),
        new("mysql", "MySQL", "Keel.MySql", "UseMySql()", ["mysql", "mariadb"], [], "MySql"),
    ];

    /// <summary>
    /// Keys that several engines read as "the server" (MySQL, PostgreSQL and SQL Server all take <c>Server=</c>): a
    /// setting that names its server this way does not say which engine it is for.
    /// </summary>
    public static readonly IReadOnlyList<string> AmbiguousKeys = ["Server", "Address", "Addr", "Network Address"];

    /// <summary>What every accepted form looks like, for error messages.</summary>
    public const string AcceptedForms =
        "a SQLite file path, sqlite:PATH or Data Source=PATH; a PostgreSQL postgres://… or postgresql://… URI or Host=… connection string; a MySQL or MariaDB mysql://… or mariadb://… URI";

    public static KnownEngine? ByName(string engine) => All.FirstOrDefault(e => string.Equals(e.Engine, engine, StringComparison.OrdinalIgnoreCase));

    public static KnownEngine? ByScheme(string scheme) => All.FirstOrDefault(e => e.Schemes.Contains(scheme, StringComparer.OrdinalIgnoreCase));

    public static KnownEngine? ByKey(IEnumerable<string> keys)
        => All.FirstOrDefault(e => e.Keys.Any(k => keys.Contains(k, StringComparer.OrdinalIgnoreCase)));
}

/// <summary>One engine of Keel's own packages: its name, display name, package, registration call, schemes, keys, settings section.</summary>
internal sealed record KnownEngine(string Engine, string DisplayName, string Package, string Call, IReadOnlyList<string> Schemes, IReadOnlyList<string> Keys, string? SettingsSection);
