using Keel.PostgreSql;
using Keel.Tests.Infrastructure;
using Npgsql;

namespace Keel.Tests.Conformance;

/// <summary>
/// Keel's PostgreSQL pool does not reset the connections it takes back (Npgsql's reset is seven statements ahead of
/// the next command, on the hot path more than the claim itself), so whatever holds session state must clean up
/// before its connection goes back.
/// </summary>
public sealed class PostgreSqlPooledConnectionTests : IAsyncLifetime
{
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(Engine.PostgreSql);

    public Task DisposeAsync() => _db.DisposeAsync().AsTask();

    [Fact]
    public async Task Keel_does_not_reset_pooled_connections_unless_the_connection_string_says_so()
    {
        await using var keel = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = _db.ConnectionString });
        await using var chosen = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = new NpgsqlConnectionStringBuilder(_db.ConnectionString) { NoResetOnClose = false }.ConnectionString });

        Assert.True(new NpgsqlConnectionStringBuilder(keel.DataSource.ConnectionString).NoResetOnClose);
        Assert.False(new NpgsqlConnectionStringBuilder(chosen.DataSource.ConnectionString).NoResetOnClose);
    }

    [Fact]
    public async Task The_listening_connection_stops_listening_before_it_goes_back_to_the_pool()
    {
        // One connection in the pool: the connection opened after the listener stopped is the listener's own.
        var oneConnection = new NpgsqlConnectionStringBuilder(_db.ConnectionString) { MaxPoolSize = 1 }.ConnectionString;
        await using var storage = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = oneConnection });
        using var stop = new CancellationTokenSource();
        var listening = storage.ListenAsync(_ => { }, stop.Token);
        long listener = 0;
        await Eventually.WaitUntilAsync(
            async () => (listener = await _db.ScalarAsync("SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE query = 'LISTEN keel_jobs' AND datname = current_database()")) != 0,
            TimeSpan.FromSeconds(10),
            "the store listens");

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => listening);

        await using var again = await storage.DataSource.OpenConnectionAsync();
        await using var pid = new NpgsqlCommand("SELECT pg_backend_pid()", again);
        Assert.Equal(listener, Convert.ToInt64(await pid.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture));
        await using var channels = new NpgsqlCommand("SELECT count(*) FROM pg_listening_channels()", again);
        Assert.Equal(0L, (long)(await channels.ExecuteScalarAsync())!);
    }
}
