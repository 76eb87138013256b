using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Sqlite;

/// <summary>
/// Opens SQLite from <c>Keel:Database</c> or <c>--database</c>: a file path (<c>keel.db</c>), <c>sqlite:PATH</c>, or a
/// Microsoft.Data.Sqlite connection string with <c>Data Source=</c>. Registered by <c>UseSqlite()</c>.
/// </summary>
internal sealed class SqliteStorageProvider : IKeelStorageProvider
{
    public string Engine => "sqlite";

    public IReadOnlyList<string> Schemes { get; } = ["sqlite"];

    public IKeelStorage Create(KeelDatabaseSetting setting, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(setting);
        ArgumentNullException.ThrowIfNull(services);
        var database = setting.WithoutScheme;
        if (string.IsNullOrWhiteSpace(database))
        {
            throw new KeelDatabaseSettingException($"{setting.Source} '{setting}' names no file: write sqlite:PATH, e.g. sqlite:keel.db");
        }

        return new SqliteStorage(new SqliteStorageOptions { ConnectionString = database }, services.GetService<TimeProvider>());
    }
}
