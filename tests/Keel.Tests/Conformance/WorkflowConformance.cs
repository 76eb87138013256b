using Keel.Storage.Conformance;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Conformance;

public sealed class SqliteWorkflowConformance : WorkflowConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.Sqlite, migrate);
}

public sealed class PostgreSqlWorkflowConformance : WorkflowConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.PostgreSql, migrate);
}

public sealed class MySqlWorkflowConformance : WorkflowConformance
{
    protected override Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate) => ConformanceDatabase.CreateAsync(Engine.MySql, migrate);
}
