namespace Keel.Storage;

/// <summary>
/// The parts of a URI database setting, <c>scheme://user:password@host:port/database?key=value</c>, decoded, for a
/// provider to turn into its driver's connection string.
/// </summary>
/// <param name="Scheme">The scheme, lower case.</param>
/// <param name="Host">The host; null when absent.</param>
/// <param name="Port">The port; null when absent.</param>
/// <param name="Database">The database (the path without its leading <c>/</c>); null when absent.</param>
/// <param name="Username">The user; null when absent.</param>
/// <param name="Password">The password; null when absent.</param>
/// <param name="Parameters">The query's <c>key=value</c> pairs, in order.</param>
public sealed record KeelDatabaseUri(
    string Scheme,
    string? Host,
    int? Port,
    string? Database,
    string? Username,
    string? Password,
    IReadOnlyList<KeyValuePair<string, string>> Parameters)
{
    /// <summary>Reads the parts of a URI setting.</summary>
    /// <param name="setting">A setting whose form is <see cref="KeelDatabaseForm.Uri"/>.</param>
    /// <returns>The parts.</returns>
    /// <exception cref="KeelDatabaseSettingException">The setting is not a well-formed <c>scheme://…</c> URI.</exception>
    public static KeelDatabaseUri Parse(KeelDatabaseSetting setting)
    {
        ArgumentNullException.ThrowIfNull(setting);
        if (setting.Scheme is null || !Uri.TryCreate(setting.Value, UriKind.Absolute, out var uri) || !setting.Value.Contains("://", StringComparison.Ordinal))
        {
            throw new KeelDatabaseSettingException($"{setting.Source} '{setting}' is not a well-formed URI: write {setting.Scheme ?? "scheme"}://user:password@host:port/database");
        }

        string? username = null;
        string? password = null;
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            password = colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        var parameters = uri.Query.TrimStart('?')
            .Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(pair => pair.Split('=', 2))
            .Select(pair => new KeyValuePair<string, string>(Uri.UnescapeDataString(pair[0]), pair.Length > 1 ? Uri.UnescapeDataString(pair[1].Replace('+', ' ')) : string.Empty))
            .ToList();
        return new KeelDatabaseUri(
            setting.Scheme,
            uri.IdnHost.Length > 0 ? uri.IdnHost : null,
            uri.Port > 0 ? uri.Port : null,
            database.Length > 0 ? database : null,
            username,
            password,
            parameters);
    }
}
