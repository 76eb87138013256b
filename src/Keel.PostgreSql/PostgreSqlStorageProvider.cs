using Keel.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Keel.PostgreSql;

/// <summary>
/// Opens PostgreSQL from <c>Keel:Database</c> or <c>--database</c>: an Npgsql connection string with <c>Host=</c>, or a
/// <c>postgres://user:password@host:port/database?key=value</c> URI (the query's keys are Npgsql's). Reads
/// <c>Keel:PostgreSql:Liveness</c>. Registered by <c>UsePostgreSql()</c>.
/// </summary>
internal sealed class PostgreSqlStorageProvider : IKeelStorageProvider
{
    /// <summary>The configuration key of <see cref="PostgreSqlStorageOptions.Liveness"/>.</summary>
    public const string LivenessKey = "Keel:PostgreSql:Liveness";

    public string Engine => "postgresql";

    public IReadOnlyList<string> Schemes { get; } = ["postgres", "postgresql"];

    public string SettingsSection => "PostgreSql";

    public Type SettingsType => typeof(PostgreSqlSettings);

    public IKeelStorage Create(KeelDatabaseSetting setting, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(setting);
        ArgumentNullException.ThrowIfNull(services);
        var options = new PostgreSqlStorageOptions
        {
            ConnectionString = setting.Form == KeelDatabaseForm.Uri ? ConnectionStringOf(setting.ParseUri()) : setting.Value,
            Liveness = Liveness(services.GetService<IConfiguration>()?[LivenessKey]),
        };
        return new PostgreSqlStorage(options);
    }

    /// <summary>The Npgsql connection string of a <c>postgres://</c> URI.</summary>
    internal static string ConnectionStringOf(KeelDatabaseUri uri)
    {
        var builder = new NpgsqlConnectionStringBuilder { Host = uri.Host, Database = uri.Database, Username = uri.Username, Password = uri.Password };
        if (uri.Port is { } port)
        {
            builder.Port = port;
        }

        foreach (var (key, value) in uri.Parameters)
        {
            builder[key] = value; // An unknown key throws ArgumentException, reported naming the setting.
        }

        return builder.ConnectionString;
    }

    private static PostgreSqlLiveness Liveness(string? configured)
    {
        if (string.IsNullOrWhiteSpace(configured))
        {
            return PostgreSqlLiveness.Auto;
        }

        return Enum.TryParse<PostgreSqlLiveness>(configured, ignoreCase: true, out var mode) && Enum.IsDefined(mode)
            ? mode
            : throw new OptionsValidationException(LivenessKey, typeof(PostgreSqlStorageOptions), [$"{LivenessKey} must be Auto, Session or Lease (was '{configured}')"]);
    }
}

/// <summary>The <c>Keel:PostgreSql</c> section: what the store built from <c>Keel:Database</c> reads.</summary>
internal sealed class PostgreSqlSettings
{
    /// <summary>See <see cref="PostgreSqlStorageOptions.Liveness"/>.</summary>
    public PostgreSqlLiveness Liveness { get; set; }
}
