using System.Data.Common;
using Keel.Storage;
using Keel.Storage.Conformance;

namespace Keel.Tests.Infrastructure;

/// <summary>
/// The conformance suite's fixture (<see cref="IConformanceDatabase"/>) for our three engines, over
/// <see cref="TestDatabase"/>: what a third-party engine writes once for its own.
/// </summary>
public sealed class ConformanceDatabase(TestDatabase db) : IConformanceDatabase
{
    public static async Task<IConformanceDatabase> CreateAsync(Engine engine, bool migrate)
        => new ConformanceDatabase(await TestDatabase.CreateAsync(engine, migrate));

    public IKeelStorage Storage => db.Storage;

    public IKeelStorage NewStorage() => db.NewStorage();

    public Task<DbConnection> OpenAsync() => db.OpenAsync();

    public Task<long> ScalarAsync(string sql) => db.ScalarAsync(sql);

    public Task<int> ExecuteAsync(string sql) => db.ExecuteAsync(sql);

    public string TimeLiteral(DateTimeOffset value) => db.TimeLiteral(value);

    public DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => db.Engine is Engine.Sqlite or Engine.MySql
        ? TimeEncoding.FromMicros(reader.GetInt64(ordinal))
        : reader.GetFieldValue<DateTimeOffset>(ordinal);

    public async Task<long?> DeadRowsAsync(string table) => db.Engine == Engine.PostgreSql
        ? await db.ScalarAsync($"SELECT coalesce(max(n_dead_tup), 0) FROM pg_stat_user_tables WHERE relname = '{table}' AND schemaname = current_schema()")
        : null; // SQLite leaves no dead rows; InnoDB's purge thread removes them by itself.

    public ValueTask DisposeAsync() => db.DisposeAsync();
}
