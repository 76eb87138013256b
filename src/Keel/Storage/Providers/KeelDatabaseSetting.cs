using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Storage;

/// <summary>
/// A database setting (<c>Keel:Database</c>, <c>--database</c>, <c>KEEL_DATABASE</c>) read for its engine. Only forms
/// that name one engine are accepted: a file path, <c>sqlite:</c> or <c>Data Source=</c> for SQLite;
/// <c>postgres://</c>, <c>postgresql://</c> or <c>Host=</c> for PostgreSQL; <c>mysql://</c> or <c>mariadb://</c> for MySQL;
/// another registered provider's URI scheme. <c>Server=</c>, which several engines read, is refused.
/// </summary>
public sealed partial class KeelDatabaseSetting
{
    /// <summary>The name used for the setting in messages when none is given.</summary>
    public const string DefaultSource = "Keel:Database";

    private KeelDatabaseSetting(string value, string source, string engine, KeelDatabaseForm form, string? scheme)
    {
        Value = value;
        Source = source;
        Engine = engine;
        Form = form;
        Scheme = scheme;
    }

    /// <summary>The setting as written.</summary>
    public string Value { get; }

    /// <summary>Where it came from, for messages: <c>Keel:Database</c>, <c>--database</c>.</summary>
    public string Source { get; }

    /// <summary>The engine it names (<see cref="IKeelStorageProvider.Engine"/>).</summary>
    public string Engine { get; }

    /// <summary>How it is written.</summary>
    public KeelDatabaseForm Form { get; }

    /// <summary>The URI scheme, lower case, when <see cref="Form"/> is <see cref="KeelDatabaseForm.Uri"/>; else null.</summary>
    public string? Scheme { get; }

    /// <summary>The part after <c>scheme:</c> (and after <c>//</c> when present) for a URI; the value itself otherwise.</summary>
    public string WithoutScheme
    {
        get
        {
            if (Scheme is null)
            {
                return Value;
            }

            var rest = Value[(Value.IndexOf(':', StringComparison.Ordinal) + 1)..];
            return rest.StartsWith("//", StringComparison.Ordinal) ? rest[2..] : rest;
        }
    }

    /// <summary>The parts of a URI setting (user, password, host, port, database, query parameters).</summary>
    /// <returns>The parts.</returns>
    /// <exception cref="KeelDatabaseSettingException">The setting is not a URI, or not a well-formed one.</exception>
    public KeelDatabaseUri ParseUri() => KeelDatabaseUri.Parse(this);

    /// <summary>The setting with any password hidden, for messages.</summary>
    /// <returns>The redacted setting.</returns>
    public override string ToString() => Redact(Value);

    /// <summary>Reads which engine <paramref name="value"/> names.</summary>
    /// <param name="value">The setting.</param>
    /// <param name="providers">The registered providers (their URI schemes); the built-in engines' forms are known without them.</param>
    /// <param name="source">The setting's name for messages.</param>
    /// <returns>The setting with its engine and form.</returns>
    /// <exception cref="KeelDatabaseSettingException">The setting is empty, ambiguous (<c>Server=…</c>) or of no known form.</exception>
    public static KeelDatabaseSetting Parse(string? value, IEnumerable<IKeelStorageProvider> providers, string source = DefaultSource)
    {
        ArgumentNullException.ThrowIfNull(providers);
        ArgumentException.ThrowIfNullOrWhiteSpace(source);
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new KeelDatabaseSettingException($"no Keel database is configured: set {source} ({KnownEngines.AcceptedForms}), or call UseSqlite(path)/UsePostgreSql(connectionString)");
        }

        var list = providers as IReadOnlyList<IKeelStorageProvider> ?? [.. providers];
        value = value.Trim();
        if (SchemePattern().Match(value) is { Success: true } uri)
        {
            var scheme = uri.Groups["scheme"].Value.ToLowerInvariant();
            var hasSlashes = uri.Groups["slashes"].Success;
            var engine = list.FirstOrDefault(p => p.Schemes.Contains(scheme, StringComparer.OrdinalIgnoreCase))?.Engine ?? KnownEngines.ByScheme(scheme)?.Engine;
            if (engine is not null)
            {
                return new KeelDatabaseSetting(value, source, engine, KeelDatabaseForm.Uri, scheme);
            }

            if (hasSlashes)
            {
                var registered = list.SelectMany(p => p.Schemes).Except(KnownEngines.All.SelectMany(e => e.Schemes), StringComparer.OrdinalIgnoreCase).Select(s => s + "://…").ToList();
                throw new KeelDatabaseSettingException($"{source} '{Redact(value)}' has the URI scheme '{scheme}', which no Keel engine reads: write {KnownEngines.AcceptedForms}{(registered.Count > 0 ? "; or " + string.Join(", ", registered) : string.Empty)}");
            }

            // "name:rest" with a scheme no engine claims: a file name with a colon, as before.
        }

        if (KeyPattern().IsMatch(value))
        {
            var keys = value.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(part => part.Split('=', 2)[0].Trim())
                .ToList();
            if (KnownEngines.ByKey(keys) is { } known)
            {
                return new KeelDatabaseSetting(value, source, known.Engine, KeelDatabaseForm.KeyValue, null);
            }

            if (keys.FirstOrDefault(k => KnownEngines.AmbiguousKeys.Contains(k, StringComparer.OrdinalIgnoreCase)) is { } ambiguous)
            {
                throw new KeelDatabaseSettingException($"{source} '{Redact(value)}' does not say which engine it is for ({ambiguous}= is read by MySQL, PostgreSQL and SQL Server alike): write PostgreSQL as Host=… or postgres://…, MySQL or MariaDB as mysql://user:password@host/database, SQLite as a file path, sqlite:PATH or Data Source=PATH");
            }

            throw new KeelDatabaseSettingException($"{source} '{Redact(value)}' is a connection string Keel cannot place (keys {string.Join(", ", keys)}): write {KnownEngines.AcceptedForms}");
        }

        return new KeelDatabaseSetting(value, source, "sqlite", KeelDatabaseForm.Path, null);
    }

    /// <summary>
    /// Opens the store <paramref name="value"/> names, with the provider of its engine registered in
    /// <paramref name="services"/> (by <c>UseSqlite()</c>, <c>UsePostgreSql()</c>, …).
    /// </summary>
    /// <param name="value">The setting.</param>
    /// <param name="services">The application's services, with the providers.</param>
    /// <param name="source">The setting's name for messages.</param>
    /// <returns>The store.</returns>
    /// <exception cref="KeelDatabaseSettingException">
    /// The setting is empty, ambiguous or of no known form; its engine's package is not registered; or the provider
    /// refused it (a malformed connection string).
    /// </exception>
    public static IKeelStorage Open(string? value, IServiceProvider services, string source = DefaultSource)
    {
        ArgumentNullException.ThrowIfNull(services);
        var providers = services.GetServices<IKeelStorageProvider>().ToList();
        var setting = Parse(value, providers, source);
        var provider = providers.FirstOrDefault(p => string.Equals(p.Engine, setting.Engine, StringComparison.OrdinalIgnoreCase));
        if (provider is null)
        {
            var known = KnownEngines.ByName(setting.Engine);
            throw new KeelDatabaseSettingException(known is null
                ? $"{source} '{setting}' is for the {setting.Engine} engine, whose provider is not registered"
                : $"{source} '{setting}' needs the {known.Package} package: add it and call {known.Call}");
        }

        try
        {
            return provider.Create(setting, services);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidCastException or OverflowException && e is not KeelDatabaseSettingException)
        {
            var display = KnownEngines.ByName(setting.Engine)?.DisplayName ?? setting.Engine;
            throw new KeelDatabaseSettingException($"{source} '{setting}' is not a valid {display} setting: {e.Message.Split(" (Parameter", 2)[0]}", e);
        }
    }

    /// <summary>Hides the password of a connection string (<c>Password=…</c>) or of a URI (<c>user:password@</c>).</summary>
    /// <param name="value">A database setting.</param>
    /// <returns>The setting with <c>***</c> for its password.</returns>
    public static string Redact(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        value = UriPasswordPattern().Replace(value, "${before}***@");
        return string.Join(';', value.Split(';').Select(part => part.TrimStart().StartsWith("Password", StringComparison.OrdinalIgnoreCase) ? "Password=***" : part));
    }

    /// <summary><c>scheme:</c> at the start, two letters at least (so <c>C:\keel.db</c> stays a path), optionally <c>//</c>.</summary>
    [GeneratedRegex(@"^(?<scheme>[A-Za-z][A-Za-z0-9+.\-]+):(?<slashes>//)?")]
    private static partial Regex SchemePattern();

    /// <summary><c>Key=</c> at the start: a keyword of letters and spaces, then <c>=</c>.</summary>
    [GeneratedRegex(@"^\s*[A-Za-z][A-Za-z ]*=")]
    private static partial Regex KeyPattern();

    /// <summary>The <c>:password@</c> of <c>scheme://user:password@host</c>.</summary>
    [GeneratedRegex(@"(?<before>^[A-Za-z][A-Za-z0-9+.\-]*://[^:@/]*:)[^@/]*@")]
    private static partial Regex UriPasswordPattern();
}
