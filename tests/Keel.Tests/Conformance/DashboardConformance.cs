using Keel.Storage.Conformance;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

public sealed class SqliteDashboardConformance : DashboardConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.Sqlite, migrate);
}

public sealed class PostgreSqlDashboardConformance : DashboardConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.PostgreSql, migrate);
}

public sealed class MySqlDashboardConformance : DashboardConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.MySql, migrate);
}
