using Keel.Storage.Conformance;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Recurring;

public sealed class SqliteRecurringConformance : RecurringConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.Sqlite, migrate);
}

public sealed class PostgreSqlRecurringConformance : RecurringConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.PostgreSql, migrate);
}

public sealed class MySqlRecurringConformance : RecurringConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.MySql, migrate);
}
