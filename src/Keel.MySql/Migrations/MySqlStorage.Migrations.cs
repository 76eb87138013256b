using System.Globalization;
using Keel.Storage;

namespace Keel.MySql;

/// <summary>
/// Schema migrations: the embedded <c>Migrations/NNNN_name.sql</c> scripts, applied in order under a named lock. DDL
/// commits implicitly on MariaDB/MySQL, so a script is not one transaction with its record: each script is recorded
/// right after it ran, and a migrator that died halfway through a script leaves that script to be finished by hand.
/// </summary>
public sealed partial class MySqlStorage
{
    /// <summary>How long a migrator waits for another one to finish, in seconds.</summary>
    private const int MigrationLockTimeoutSeconds = 120;

    private static readonly IReadOnlyList<MigrationScript> Migrations = MigrationScript.LoadEmbedded(typeof(MySqlStorage).Assembly);

    /// <inheritdoc />
    public int LatestSchemaVersion => Migrations.Count;

    /// <inheritdoc />
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var session = Session.Autocommit(connection, null);
        await using (var take = session.Command(MigrationsSql.MigrationLock))
        {
            take.Parameters.AddWithValue("@timeout", MigrationLockTimeoutSeconds);
            if (Convert.ToInt64(await take.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) ?? 0L, CultureInfo.InvariantCulture) != 1)
            {
                throw new TimeoutException($"another process has been migrating the MySQL database {DatabaseName} for {MigrationLockTimeoutSeconds} s; try again once it is done");
            }
        }

        try
        {
            await session.ExecuteAsync(MigrationsSql.MigrationTableCreate, cancellationToken).ConfigureAwait(false);
            await using var read = session.Command(MigrationsSql.MigrationVersionRead);
            var current = Convert.ToInt32(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (current > LatestSchemaVersion)
            {
                throw MigrationScript.NewerThanCode("MySQL", current, LatestSchemaVersion);
            }

            foreach (var script in Migrations.Where(m => m.Version > current))
            {
                await session.ExecuteAsync(script.Sql, cancellationToken).ConfigureAwait(false);
                await using var record = session.Command(MigrationsSql.MigrationRecord);
                record.Parameters.AddWithValue("@version", script.Version);
                record.Parameters.AddWithValue("@name", script.Name);
                await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await session.ExecuteAsync(MigrationsSql.MigrationUnlock, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public Task<int> SchemaVersionAsync(CancellationToken cancellationToken)
        => ReadAsync(
            null,
            async session =>
            {
                await using var exists = session.Command(MigrationsSql.SchemaTableExists);
                if (Convert.ToInt64(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture) == 0)
                {
                    return 0;
                }

                await using var read = session.Command(MigrationsSql.MigrationVersionRead);
                return Convert.ToInt32(await read.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
            },
            cancellationToken);
}
