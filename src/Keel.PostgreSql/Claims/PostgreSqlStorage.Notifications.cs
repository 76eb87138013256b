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
        try
        {
            await using (var listen = new NpgsqlCommand(ClaimsSql.Listen, connection))
            {
                await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            onJobsReady(JobNotifications.Listening);

            while (!cancellationToken.IsCancellationRequested)
            {
                await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            await UnlistenAsync(connection).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Stops listening before the connection goes back to the pool, which does not reset connections
    /// (<see cref="WithKeelDefaults"/>): a pooled connection still listening would collect notifications nobody reads.
    /// A connection that broke is not pooled again, and one that cannot unlisten is dropped from the pool.
    /// </summary>
    private async Task UnlistenAsync(NpgsqlConnection connection)
    {
        if (connection.State != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await using var unlisten = new NpgsqlCommand(ClaimsSql.Unlisten, connection);
            await unlisten.ExecuteNonQueryAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException or TimeoutException)
        {
            DataSource.Clear(); // Closes the idle connections, and the busy ones as they come back: this one too.
        }
    }
}
