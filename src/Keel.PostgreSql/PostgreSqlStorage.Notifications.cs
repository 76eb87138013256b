using Keel.Storage;
using Npgsql;

namespace Keel.PostgreSql;

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
        await using (var listen = new NpgsqlCommand("LISTEN keel_jobs", connection))
        {
            await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
