using Keel.Storage.Conformance;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

public sealed class SqliteStorageConformance : StorageConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.Sqlite, migrate);
}

public sealed class PostgreSqlStorageConformance : StorageConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.PostgreSql, migrate);
}

public sealed class MySqlStorageConformance : StorageConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.MySql, migrate);
}
