using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Hosting;

/// <summary>Makes sure the database schema fits this code before anything runs.</summary>
public static class SchemaGate
{
    /// <summary>
    /// Migrates when <paramref name="autoMigrate"/> is set; otherwise checks that the database is exactly at the
    /// code's version and says what to run when it is not.
    /// </summary>
    /// <param name="storage">The store.</param>
    /// <param name="autoMigrate">Apply missing migrations.</param>
    /// <param name="logger">Where to report a migration.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task.</returns>
    /// <exception cref="KeelSchemaException">The schema does not fit.</exception>
    public static async Task EnsureAsync(IKeelStorage storage, bool autoMigrate, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (autoMigrate)
        {
            var before = await storage.SchemaVersionAsync(cancellationToken);
            await storage.MigrateAsync(cancellationToken);
            if (before != storage.LatestSchemaVersion)
            {
                Log.SchemaMigrated(logger, storage.Engine, storage.LatestSchemaVersion);
            }

            return;
        }

        var version = await storage.SchemaVersionAsync(cancellationToken);
        if (version > storage.LatestSchemaVersion)
        {
            throw MigrationScript.NewerThanCode(storage.Engine, version, storage.LatestSchemaVersion);
        }

        if (version < storage.LatestSchemaVersion)
        {
            throw new KeelSchemaException(version == 0
                ? $"the {storage.Engine} database has no Keel schema: run `keel migrate` or set Keel:AutoMigrate to true"
                : $"the {storage.Engine} database is at Keel schema version {version}, this code needs {storage.LatestSchemaVersion}: run `keel migrate` or set Keel:AutoMigrate to true");
        }
    }
}
