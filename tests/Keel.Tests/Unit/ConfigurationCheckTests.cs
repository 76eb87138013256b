using System.Text;
using Keel.Cli;
using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Keel.Tests.Unit;

/// <summary>
/// Configuration never silently does something else: a bad value anywhere under <c>Keel</c>, an unknown key, a single
/// value where a list belongs and an empty list all stop start-up with a message naming the key.
/// </summary>
public sealed class ConfigurationCheckTests
{
    private static IHost Host(IDictionary<string, string?>? settings = null, string? json = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (json is not null)
        {
            builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        }

        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Services.AddKeel(k => k.UsePostgreSql().UseStorage(_ => throw new InvalidOperationException("no store in these tests")).AddJob<Keel.Tests.EndToEnd.CountingJob>());
        return builder.Build();
    }

    private static string Refusal(IDictionary<string, string?>? settings = null, string? json = null)
    {
        using var host = Host(settings, json);
        var error = Assert.Throws<OptionsValidationException>(() => host.Services.GetRequiredService<IOptions<KeelOptions>>().Value);
        return error.Message;
    }

    private static KeelOptions Bound(IDictionary<string, string?>? settings = null, string? json = null)
    {
        using var host = Host(settings, json);
        return host.Services.GetRequiredService<IOptions<KeelOptions>>().Value;
    }

    [Theory]
    [InlineData("Keel:Workers:0:Threads", "abc", "Keel:Workers:0:Threads must be a whole number (was 'abc')")]
    [InlineData("Keel:Workers:0:PollingInterval", "abc", "Keel:Workers:0:PollingInterval must be a duration such as 00:00:05")]
    [InlineData("Keel:Workers:0:Queues", "mail", "Keel:Workers:0:Queues must be a list, not a single value: write Keel:Workers:0:Queues:0=mail")]
    [InlineData("Keel:Dispatcher:BatchSize", "many", "Keel:Dispatcher:BatchSize must be a whole number (was 'many')")]
    [InlineData("Keel:HeartbeatInterval", "5s", "Keel:HeartbeatInterval must be a duration such as 00:00:05")]
    [InlineData("Keel:AutoMigrate", "yes", "Keel:AutoMigrate must be true or false (was 'yes')")]
    [InlineData("Keel:Recurring:nightly:Priority", "high", "Keel:Recurring:nightly:Priority must be a whole number (was 'high')")]
    [InlineData("Keel:Recurring:nightly:CatchUp", "Twice", "Keel:Recurring:nightly:CatchUp must be one of Skip, Once, All (was 'Twice')")]
    [InlineData("Keel:Workers:0:Threads", "", "Keel:Workers:0:Threads must be a whole number (was '')")]
    public void A_bad_value_anywhere_stops_start_up_naming_the_key(string key, string value, string expected)
    {
        var settings = new Dictionary<string, string?> { [key] = value };
        if (key.StartsWith("Keel:Workers:0:", StringComparison.Ordinal) && key != "Keel:Workers:0:Queues")
        {
            settings["Keel:Workers:0:Queues:0"] = "mail"; // the entry the binder used to drop, taking "mail only" with it
        }

        Assert.Contains(expected, Refusal(settings), StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_value_in_a_worker_entry_no_longer_turns_mail_only_into_every_queue()
    {
        // The binder alone drops the whole entry and the default worker runs "*" with 10 threads; now it is refused.
        var message = Refusal(new Dictionary<string, string?> { ["Keel:Workers:0:Queues:0"] = "mail", ["Keel:Workers:0:Threads"] = "abc" });
        Assert.Contains("Keel:Workers:0:Threads", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Keel:Wrokers:0:Threads", "Keel:Wrokers is not a Keel setting: did you mean Keel:Workers?")]
    [InlineData("Keel:Workers:0:Thread", "Keel:Workers:0:Thread is not a Keel setting: did you mean Keel:Workers:0:Threads?")]
    [InlineData("Keel:Dispatcher:Batchsize2", "Keel:Dispatcher:Batchsize2 is not a Keel setting: did you mean Keel:Dispatcher:BatchSize?")]
    [InlineData("Keel:HeartBeat", "Keel:HeartBeat is not a Keel setting: did you mean Keel:Heartbeat")]
    [InlineData("Keel:Recurring:nightly:Shedule", "Keel:Recurring:nightly:Shedule is not a Keel setting: did you mean Keel:Recurring:nightly:Schedule?")]
    [InlineData("Keel:EffectiveWorkers:0:Threads", "Keel:EffectiveWorkers is not a Keel setting")]
    public void Unknown_keys_are_refused_with_the_closest_valid_key(string key, string expected)
        => Assert.Contains(expected, Refusal(new Dictionary<string, string?> { [key] = "1" }), StringComparison.Ordinal);

    [Fact]
    public void An_unknown_key_far_from_every_setting_lists_the_settings_of_its_section()
    {
        var message = Refusal(new Dictionary<string, string?> { ["Keel:Dispatcher:Zzzzzzzzzz"] = "1" });
        Assert.Contains("Keel:Dispatcher:Zzzzzzzzzz is not a Keel setting; the settings under Keel:Dispatcher are BatchSize, Enabled, PollingInterval", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_lists_are_refused_instead_of_meaning_every_queue()
    {
        var message = Refusal(json: """{ "Keel": { "Workers": [ { "Queues": [], "Threads": 2 } ] } }""");
        Assert.Contains("Keel:Workers:0:Queues is an empty list, which would mean every queue", message, StringComparison.Ordinal);
        message = Refusal(json: """{ "Keel": { "Workers": [] } }""");
        Assert.Contains("Keel:Workers is an empty list, which would mean one worker on every queue", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_arguments_written_as_an_object_are_refused_not_replaced_by_empty_arguments()
    {
        var message = Refusal(json: """{ "Keel": { "Recurring": { "nightly": { "Kind": "count", "Schedule": "@daily", "Args": { "n": 1 } } } } }""");
        Assert.Contains("Keel:Recurring:nightly:Args must be a single value, not a section", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var message = Refusal(new Dictionary<string, string?>
        {
            ["Keel:Workers:0:Threads"] = "abc",
            ["Keel:Workers:1:Queues"] = "mail",
            ["Keel:Wrokers"] = "x",
        });
        Assert.Contains("Keel:Workers:0:Threads", message, StringComparison.Ordinal);
        Assert.Contains("Keel:Workers:1:Queues", message, StringComparison.Ordinal);
        Assert.Contains("Keel:Wrokers", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Valid_configuration_binds_including_user_chosen_recurring_keys_and_leaves_other_sections_alone()
    {
        var options = Bound(
            new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Warning",
                ["Logging:Whatever:Thing"] = "anything", // outside Keel: not Keel's business
                ["Keel:Database"] = "keel.db",
                ["keel:workers:0:threads"] = "3", // configuration keys are case-insensitive, and so is the check
                ["Keel:Workers:0:Queues:0"] = "mail",
                ["Keel:Workers:0:Queues:1"] = "reports*",
                ["Keel:ClearFinishedJobsAfter"] = "", // empty: keep forever
                ["Keel:Recurring:my-own-key:Kind"] = "count",
                ["Keel:Recurring:my-own-key:Schedule"] = "@daily",
                ["Keel:Recurring:my-own-key:CatchUp"] = "once",
                ["Keel:Recurring:another_key:Kind"] = "count",
                ["Keel:Recurring:another_key:Schedule"] = "@hourly",
            });
        Assert.Equal(3, Assert.Single(options.Workers).Threads);
        Assert.Equal(["mail", "reports*"], options.Workers[0].Queues);
        Assert.Null(options.ClearFinishedJobsAfter);
        Assert.Equal(["another_key", "my-own-key"], options.Recurring.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(RecurringCatchUp.Once, options.Recurring["my-own-key"].CatchUp);
    }

    [Fact]
    public void Valid_keys_come_from_the_options_types_so_a_new_option_is_accepted_without_a_list_to_update()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Keel:LeaseMargin"] = "00:00:03",
            ["Keel:Extra:Depth"] = "4",
            ["Keel:Items:0:Name"] = "a",
            ["Keel:Items:0:Nmae"] = "b",
            ["Keel:Extra:Depht"] = "5",
        }).Build();
        var errors = KeelConfigurationCheck.Check(configuration.GetSection("Keel"), typeof(FutureOptions));
        Assert.Equal(
            ["Keel:Extra:Depht is not a Keel setting: did you mean Keel:Extra:Depth?", "Keel:Items:0:Nmae is not a Keel setting: did you mean Keel:Items:0:Name?"],
            errors.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task The_cli_check_command_reports_bad_configuration_with_exit_code_3()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await KeelCli.RunAsync(
            ["check", "--database", Path.Combine(Path.GetTempPath(), "never-created-" + Guid.NewGuid().ToString("N") + ".db")],
            builder =>
            {
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Keel:Workers:0:Thread"] = "3" });
                builder.Services.AddKeel(k => k.UseSqlite());
            },
            output,
            error);
        Assert.Equal(ExitCodes.InvalidConfiguration, code);
        Assert.Contains("keel: invalid configuration: Keel:Workers:0:Thread is not a Keel setting: did you mean Keel:Workers:0:Threads?", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>Stands in for options another engineer adds later: the check knows them without being told.</summary>
    public sealed class FutureOptions
    {
        public TimeSpan LeaseMargin { get; set; }

        public FutureExtra Extra { get; } = new();

        public IList<FutureItem> Items { get; } = new List<FutureItem>();
    }

    public sealed class FutureExtra
    {
        public int Depth { get; set; }
    }

    public sealed class FutureItem
    {
        public string Name { get; set; } = string.Empty;
    }

    [Fact]
    public void The_postgresql_section_is_checked_like_the_rest()
    {
        Assert.Contains("Keel:PostgreSql:Liveness must be one of Auto, Session, Lease (was 'Sometimes')", Refusal(new Dictionary<string, string?> { ["Keel:PostgreSql:Liveness"] = "Sometimes" }), StringComparison.Ordinal);
        Assert.Contains("did you mean Keel:PostgreSql:Liveness?", Refusal(new Dictionary<string, string?> { ["Keel:PostgreSql:Livenes"] = "Lease" }), StringComparison.Ordinal);
        Assert.NotNull(Bound(new Dictionary<string, string?> { ["Keel:PostgreSql:Liveness"] = "Lease", ["Keel:TerminationGracePeriod"] = "00:00:45" }));
    }
}
