using Keel.Storage;
using Npgsql;

namespace Keel.PostgreSql;

public sealed partial class PostgreSqlStorage : IJobNotifications
{
    /// <inheritdoc />
    public async Task ListenAsync(Action<string> onJobsReady, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onJobsReady);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
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
