namespace Keel.Storage.Conformance;

/// <summary>
/// The base of every conformance class: a fresh, migrated database per test, made by the engine's
/// <see cref="CreateDatabaseAsync"/>. An engine attaches a class by subclassing it and overriding that one method.
/// </summary>
public abstract class ConformanceTests : IAsyncLifetime
{
    private IConformanceDatabase? _db;

    /// <summary>This test's database.</summary>
    protected IConformanceDatabase Db => _db ?? throw new InvalidOperationException("the test has not been initialised");

    /// <summary>The store under test (<see cref="IConformanceDatabase.Storage"/>).</summary>
    protected IKeelStorage Storage => Db.Storage;

    /// <summary>
    /// Creates a fresh, empty database of the engine under test, its schema migrated with
    /// <see cref="IKeelStorage.MigrateAsync"/> when <paramref name="migrate"/> is true (the suite creates
    /// unmigrated ones to test migrations). Each call gives a database no other test uses; tests run in parallel
    /// across classes.
    /// </summary>
    protected abstract Task<IConformanceDatabase> CreateDatabaseAsync(bool migrate);

    /// <summary>Creates this test's database.</summary>
    public async Task InitializeAsync() => _db = await CreateDatabaseAsync(migrate: true);

    /// <summary>Disposes this test's database.</summary>
    public async Task DisposeAsync()
    {
        if (_db is not null)
        {
            await _db.DisposeAsync();
        }
    }
}
