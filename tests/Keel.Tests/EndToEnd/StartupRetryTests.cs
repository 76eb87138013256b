using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Storage;
using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keel.Tests.EndToEnd;

/// <summary>
/// An application starting while its database is unreachable waits for it — retrying with backoff, one log line when
/// it starts failing and one when it is reachable — for up to Keel:StartupTimeout, then fails with one clear message.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class StartupRetryTests
{
    private static IHost Build(string connectionString, LogRecorder logs, TimeSpan startupTimeout)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddProvider(logs).SetMinimumLevel(LogLevel.Debug);
        builder.Services.AddSingleton(new Recorder());
        builder.Services.AddKeel(k => k
            .UseStorage(_ => new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = connectionString }))
            .AddJob<CountingJob>()
            .Configure(o => o.StartupTimeout = startupTimeout));
        return builder.Build();
    }

    [Fact]
    public async Task Start_up_waits_for_a_database_that_comes_up_later_and_logs_each_change_once()
    {
        await using var server = await PostgresServer.StartAsync();
        var connectionString = await server.CreateDatabaseAsync();
        await server.StopAsync();

        var logs = new LogRecorder();
        using var host = Build(connectionString, logs, TimeSpan.FromMinutes(2));
        var starting = host.StartAsync();
        await logs.Logged(7101).WaitAsync(TimeSpan.FromSeconds(60)); // "unreachable at start-up; retrying"
        Assert.False(starting.IsCompleted, "the host waits for its database instead of failing at once");

        await server.StartAgainAsync();
        await starting.WaitAsync(TimeSpan.FromSeconds(90));
        var unreachable = Assert.Single(logs.WithId(7101));
        Assert.Equal(LogLevel.Warning, unreachable.Level);
        Assert.Contains("retrying for up to 00:02:00 (Keel:StartupTimeout)", unreachable.Message, StringComparison.Ordinal);
        Assert.Null(unreachable.Exception); // one line; the stack trace goes to debug, once
        Assert.Single(logs.WithId(7103));
        Assert.Contains("reachable after", Assert.Single(logs.WithId(7102)).Message, StringComparison.Ordinal);

        // It really started: the schema was migrated on the database that came up.
        await using var storage = new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = connectionString });
        Assert.Equal(storage.LatestSchemaVersion, await storage.SchemaVersionAsync(default));
        await host.StopAsync();
    }

    [Fact]
    public async Task Start_up_gives_up_after_the_startup_timeout_with_one_clear_message()
    {
        var logs = new LogRecorder();
        using var host = Build("Host=127.0.0.1;Port=1;Timeout=2;Database=keel", logs, TimeSpan.FromSeconds(1));
        var error = await Assert.ThrowsAsync<KeelStartupException>(() => host.StartAsync());
        Assert.StartsWith("the postgresql database could not be reached within Keel:StartupTimeout (00:00:01): ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Single(logs.WithId(7101));
        Assert.Empty(logs.WithId(7102));
    }

    [Fact]
    public async Task A_startup_timeout_of_zero_tries_once_and_an_error_that_retrying_cannot_fix_fails_at_once()
    {
        var logs = new LogRecorder();
        using (var host = Build("Host=127.0.0.1;Port=1;Timeout=2;Database=keel", logs, TimeSpan.Zero))
        {
            await Assert.ThrowsAsync<KeelStartupException>(() => host.StartAsync());
        }

        // A wrong password is not transient: no waiting, the database's own error.
        var server = await SharedPostgres.GetAsync();
        var database = await server.CreateDatabaseAsync();
        var wrong = new Npgsql.NpgsqlConnectionStringBuilder(database) { Username = "nobody_" + Guid.NewGuid().ToString("N")[..8], Password = "x" }.ConnectionString;
        var refused = new LogRecorder();
        using var refusedHost = Build(wrong, refused, TimeSpan.FromMinutes(5));
        var error = await Assert.ThrowsAnyAsync<Exception>(() => refusedHost.StartAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.IsNotType<KeelStartupException>(error);
        Assert.IsNotType<TimeoutException>(error);
        Assert.Empty(refused.WithId(7101));
    }

    [Fact]
    public void A_negative_startup_timeout_is_refused_naming_the_key()
    {
        var errors = new KeelOptionsValidator().Validate(null, new KeelOptions { StartupTimeout = TimeSpan.FromSeconds(-1) });
        Assert.Contains("Keel:StartupTimeout must not be negative (was -00:00:01)", errors.FailureMessage, StringComparison.Ordinal);
    }
}
