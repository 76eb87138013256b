using Keel.Registry;
using Keel.Storage;

namespace Keel.Tests.Unit;

public sealed class RegistryAndOptionsTests
{
    public sealed record Args(int X);

    public sealed class PlainJob : IJob<Args>
    {
        public Task PerformAsync(Args args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Job("emails.welcome", Queue = "mail", Priority = 3, MaxAttempts = 7, TimeoutSeconds = 30)]
    [DiscardOn(typeof(FormatException))]
    public sealed class RenamedJob : IJob<Args>
    {
        public Task PerformAsync(Args args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Job("emails.welcome")]
    public sealed class ClashingJob : IJob<Args>
    {
        public Task PerformAsync(Args args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
    }

    [Fact]
    public void The_kind_defaults_to_the_type_name()
        => Assert.Equal("PlainJob", new JobRegistry().Add(typeof(PlainJob), null).Kind);

    [Fact]
    public void The_attribute_names_the_kind_and_its_defaults_and_code_overrides_them()
    {
        var descriptor = new JobRegistry().Add(typeof(RenamedJob), o => o.MaxAttempts = 2);
        Assert.Equal("emails.welcome", descriptor.Kind);
        Assert.Equal(("mail", 3, 2, TimeSpan.FromSeconds(30)), (descriptor.Options.Queue, descriptor.Options.Priority, descriptor.Options.MaxAttempts, descriptor.Options.Timeout));
        Assert.Contains(typeof(FormatException), descriptor.Options.DiscardOn);
        Assert.Equal(typeof(Args), descriptor.ArgsType);
    }

    [Fact]
    public void Two_types_claiming_one_kind_are_refused_by_name()
    {
        var registry = new JobRegistry();
        registry.Add(typeof(RenamedJob), null);
        var error = Assert.Throws<ArgumentException>(() => registry.Add(typeof(ClashingJob), null));
        Assert.Contains("emails.welcome", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_job_options_are_reported_with_the_kind()
    {
        var registry = new JobRegistry();
        registry.Add(typeof(PlainJob), o => { o.MaxAttempts = 0; o.Queue = "a*"; });
        var errors = registry.Validate();
        Assert.Contains(errors, e => e.Contains("'PlainJob'", StringComparison.Ordinal) && e.Contains("MaxAttempts", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Queue 'a*'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("*", QueueMatch.All, "")]
    [InlineData("mail", QueueMatch.Exact, "mail")]
    [InlineData("mail*", QueueMatch.Prefix, "mail")]
    [InlineData("50%_off", QueueMatch.Exact, "50%_off")]
    public void Queue_entries_parse(string entry, QueueMatch kind, string value)
        => Assert.Equal(new QueueFilter(kind, value), QueueFilter.Parse(entry));

    [Theory]
    [InlineData("")]
    [InlineData("a*b")]
    [InlineData("**")]
    public void Bad_queue_entries_are_refused(string entry)
        => Assert.Throws<ArgumentException>(() => QueueFilter.Parse(entry));

    [Fact]
    public void The_options_validator_names_each_bad_key_and_value()
    {
        var options = new KeelOptions();
        options.Workers.Add(new WorkerOptions { Threads = 0, Queues = ["ok", "bad*queue"], PollingInterval = TimeSpan.Zero });
        options.Dispatcher.BatchSize = 0;
        var result = new KeelOptionsValidator().Validate(null, options);
        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith("Keel:Workers:0:Threads", StringComparison.Ordinal) && f.Contains("was 0", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Keel:Workers:0:Queues:1", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Keel:Workers:0:PollingInterval", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.StartsWith("Keel:Dispatcher:BatchSize", StringComparison.Ordinal));
        Assert.True(new KeelOptionsValidator().Validate(null, new KeelOptions()).Succeeded);
    }

    [Fact]
    public void The_lease_and_stop_margins_are_validated_with_messages_that_say_why()
    {
        var failures = new KeelOptionsValidator().Validate(null, new KeelOptions
        {
            HeartbeatInterval = TimeSpan.FromSeconds(5),
            AliveThreshold = TimeSpan.FromSeconds(12),
            CancellationGrace = TimeSpan.FromSeconds(4),
            SessionGracePeriod = TimeSpan.FromSeconds(20),
            ShutdownTimeout = TimeSpan.FromSeconds(25),
            TerminationGracePeriod = TimeSpan.FromSeconds(30),
        }).Failures!;
        Assert.Contains(failures, f => f.StartsWith("Keel:AliveThreshold must be at least three times Keel:HeartbeatInterval", StringComparison.Ordinal) && f.Contains("fences itself", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Keel:CancellationGrace", StringComparison.Ordinal) && f.Contains("quarter", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Keel:SessionGracePeriod", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Keel:ShutdownTimeout (00:00:25) does not fit Keel:TerminationGracePeriod (00:00:30)", StringComparison.Ordinal) && f.Contains("at most 00:00:16", StringComparison.Ordinal));

        // The defaults fit Kubernetes' default grace period, and scale down with a short lease.
        Assert.True(new KeelOptionsValidator().Validate(null, new KeelOptions { TerminationGracePeriod = TimeSpan.FromSeconds(30) }).Succeeded);
        var fast = new KeelOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(200), AliveThreshold = TimeSpan.FromMilliseconds(1200) };
        Assert.Equal((TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(600)), (fast.CancellationGrace, fast.SessionGracePeriod));
        Assert.True(new KeelOptionsValidator().Validate(null, fast).Succeeded);
    }
}
