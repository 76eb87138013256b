using Keel.PostgreSql;

namespace Keel.Tests.Infrastructure;

/// <summary>A throwaway PostgreSQL database and a store of its own on it: for tests of PostgreSQL's own statements.</summary>
public abstract class PostgreSqlStoreTest : IAsyncLifetime
{
    /// <summary>The database.</summary>
    protected TestDatabase Db { get; private set; } = null!;

    /// <summary>A store on <see cref="Db"/>, disposed with it.</summary>
    protected PostgreSqlStorage Storage { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Db = await TestDatabase.CreateAsync(Engine.PostgreSql);
        Storage = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = Db.ConnectionString });
    }

    public async Task DisposeAsync()
    {
        await Storage.DisposeAsync();
        await Db.DisposeAsync();
    }
}
