using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Schema migrations: the embedded <c>Migrations/NNNN_name.sql</c> scripts, applied in one transaction under an advisory lock.</summary>
public sealed partial class PostgreSqlStorage
{
    private static readonly Lazy<IReadOnlyList<MigrationScript>> Migrations =
        new(() => MigrationScript.LoadEmbedded(typeof(PostgreSqlStorage).Assembly));

    /// <inheritdoc />
    public int LatestSchemaVersion => Migrations.Value.Count;

    /// <inheritdoc />
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        var scripts = Migrations.Value;
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand(MigrationsSql.MigrationLock, connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("key", NpgsqlDbType.Bigint) { TypedValue = MigrationsSql.MigrationLockKey });
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var command = new NpgsqlCommand(MigrationsSql.MigrationTableCreate, connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        int current;
        await using (var command = new NpgsqlCommand(MigrationsSql.MigrationVersionRead, connection, transaction))
        {
            current = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        }

        if (current > scripts.Count)
        {
            throw MigrationScript.NewerThanCode("PostgreSQL", current, scripts.Count);
        }

        foreach (var script in scripts)
        {
            if (script.Version <= current)
            {
                continue;
            }

            await using (var command = new NpgsqlCommand(script.Sql, connection, transaction))
            {
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using (var command = new NpgsqlCommand(MigrationsSql.MigrationRecord, connection, transaction))
            {
                command.Parameters.Add(new NpgsqlParameter<int>("version", NpgsqlDbType.Integer) { TypedValue = script.Version });
                command.Parameters.Add(new NpgsqlParameter<string>("name", NpgsqlDbType.Text) { TypedValue = script.Name });
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<int> SchemaVersionAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var exists = new NpgsqlCommand(MigrationsSql.SchemaTableExists, connection))
        {
            if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
            {
                return 0;
            }
        }

        await using var command = new NpgsqlCommand(MigrationsSql.MigrationVersionRead, connection);
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }
}
