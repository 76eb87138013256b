using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Keel.Tests.EndToEnd;

public sealed class StartupValidationTests
{
    [Fact]
    public async Task Invalid_configuration_stops_start_up_with_a_message_naming_the_key()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        using var host = KeelHost.Build(db, new Recorder(), settings: new Dictionary<string, string?>
        {
            ["Keel:Workers:0:Threads"] = "0",
            ["Keel:Workers:0:Queues:0"] = "mail",
        });
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("Keel:Workers:0:Threads must be between 1 and 1000 (was 0)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_negative_claim_ahead_stops_start_up_with_a_message_naming_the_key()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        using var host = KeelHost.Build(db, new Recorder(), settings: new Dictionary<string, string?>
        {
            ["Keel:Workers:0:ClaimAhead"] = "-1",
            ["Keel:Workers:0:Queues:0"] = "mail",
        });
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("Keel:Workers:0:ClaimAhead must be between 0 and 1000, or unset for twenty times Threads, at most 1000 (was -1)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Configuration_binds_workers_from_the_Keel_section()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        using var host = KeelHost.Build(db, new Recorder(), settings: new Dictionary<string, string?>
        {
            ["Keel:Workers:0:Threads"] = "3",
            ["Keel:Workers:0:Queues:0"] = "mail",
            ["Keel:Workers:0:Queues:1"] = "reports*",
            ["Keel:ShutdownTimeout"] = "00:00:07",
        });
        var options = ((IOptions<KeelOptions>)host.Services.GetService(typeof(IOptions<KeelOptions>))!).Value;
        var worker = Assert.Single(options.Workers);
        Assert.Equal(3, worker.Threads);
        Assert.Equal(["mail", "reports*"], worker.Queues);
        Assert.Equal(TimeSpan.FromSeconds(7), options.ShutdownTimeout);
    }

    [Fact]
    public async Task Without_auto_migrate_an_unmigrated_database_stops_start_up_with_what_to_run()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite, migrate: false);
        using var host = KeelHost.Build(db, new Recorder(), o => o.AutoMigrate = false);
        var error = await Assert.ThrowsAsync<KeelSchemaException>(() => host.StartAsync());
        Assert.Contains("keel migrate", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Auto_migrate_creates_the_schema_at_start()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite, migrate: false);
        using var host = KeelHost.Build(db, new Recorder());
        await host.StartAsync();
        await host.StopAsync();
        Assert.Equal(db.Storage.LatestSchemaVersion, await db.Storage.SchemaVersionAsync(default));
    }
}
