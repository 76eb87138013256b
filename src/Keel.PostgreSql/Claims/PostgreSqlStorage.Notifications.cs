using Keel.Storage;
using Npgsql;

namespace Keel.PostgreSql;

/// <summary>LISTEN/NOTIFY, PostgreSQL's own: statements that make jobs ready notify their queue; idle workers listen.</summary>
public sealed partial class PostgreSqlStorage : IJobNotifications
{
    /// <inheritdoc />
    public async Task ListenAsync(Action<string> onJobsReady, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onJobsReady);
        await DataSourceAsync(cancellationToken).ConfigureAwait(false);
        if (Pooled is true)
        {
            // LISTEN needs a session of its own, which a transaction-mode pooler does not give: workers poll instead.
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            return;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        connection.Notification += (_, e) => onJobsReady(e.Payload);
        await using (var listen = new NpgsqlCommand(ClaimsSql.Listen, connection))
        {
            await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
