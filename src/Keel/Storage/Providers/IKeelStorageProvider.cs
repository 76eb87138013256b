namespace Keel.Storage;

/// <summary>
/// What a store package registers so that Keel can open its engine from a setting: <c>Keel:Database</c> in
/// configuration, or <c>--database</c> / <c>KEEL_DATABASE</c> on the command line. A package's <c>UseXxx()</c> (no
/// connection string) adds its provider with <see cref="KeelStorageBuilderExtensions.AddStorageProvider"/>; Keel reads the
/// setting's form (<see cref="KeelDatabaseSetting"/>), picks the provider of that engine and asks it for the store.
/// </summary>
public interface IKeelStorageProvider
{
    /// <summary>
    /// The engine this provider opens: <c>sqlite</c>, <c>postgresql</c>, <c>mysql</c>, or another engine's own name.
    /// The forms Keel knows for the built-in engines (a file path and <c>Data Source=</c> for SQLite, <c>Host=</c> for
    /// PostgreSQL) go to the provider with that name.
    /// </summary>
    string Engine { get; }

    /// <summary>
    /// The URI schemes of this engine's settings, without the colon (<c>postgres</c> and <c>postgresql</c> for
    /// <c>postgres://…</c>); matched without regard to case.
    /// </summary>
    IReadOnlyList<string> Schemes { get; }

    /// <summary>
    /// The section under <c>Keel</c> this engine reads its own settings from (<c>PostgreSql</c> for
    /// <c>Keel:PostgreSql:Liveness</c>), checked key by key at start like the rest of <c>Keel</c>; null when it reads none.
    /// </summary>
    string? SettingsSection => null;

    /// <summary>The type whose settable properties are the keys of <see cref="SettingsSection"/>; null when it has none.</summary>
    Type? SettingsType => null;

    /// <summary>Creates the store for a setting Keel chose this provider for.</summary>
    /// <param name="setting">The setting, with its form (a URI, <c>key=value</c> pairs or a file path).</param>
    /// <param name="services">The application's services (its <c>IConfiguration</c>, <see cref="TimeProvider"/>…).</param>
    /// <returns>The store; Keel disposes it with the application.</returns>
    /// <exception cref="ArgumentException">The setting is malformed for this engine; Keel reports it naming the setting.</exception>
    IKeelStorage Create(KeelDatabaseSetting setting, IServiceProvider services);
}
