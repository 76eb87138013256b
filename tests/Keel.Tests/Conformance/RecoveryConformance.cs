using Keel.Storage.Conformance;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

public sealed class SqliteRecoveryConformance : RecoveryConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.Sqlite, migrate);
}

public sealed class PostgreSqlRecoveryConformance : RecoveryConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.PostgreSql, migrate);
}

public sealed class MySqlRecoveryConformance : RecoveryConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.MySql, migrate);
}
