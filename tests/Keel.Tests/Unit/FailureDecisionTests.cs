using Keel.Runtime;

namespace Keel.Tests.Unit;

public sealed class FailureDecisionTests
{
    private static readonly DateTimeOffset Now = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(1, 10_000)]
    [InlineData(2, 20_000)]
    [InlineData(3, 40_000)]
    [InlineData(10, 60_000)]
    public void Backoff_doubles_per_attempt_up_to_the_cap(int attempt, double expectedMs)
    {
        var backoff = new BackoffOptions { Base = TimeSpan.FromSeconds(10), Max = TimeSpan.FromMinutes(1), Jitter = 0 };
        Assert.Equal(expectedMs, FailureDecision.Backoff(backoff, attempt, 0.3).TotalMilliseconds, precision: 3);
    }

    [Fact]
    public void Jitter_varies_the_delay_within_its_fraction()
    {
        var backoff = new BackoffOptions { Base = TimeSpan.FromSeconds(10), Jitter = 0.2 };
        Assert.Equal(8_000, FailureDecision.Backoff(backoff, 1, 0).TotalMilliseconds, precision: 3);
        Assert.Equal(10_000, FailureDecision.Backoff(backoff, 1, 0.5).TotalMilliseconds, precision: 3);
        Assert.Equal(11_999.6, FailureDecision.Backoff(backoff, 1, 0.99999).TotalMilliseconds, precision: 0);
    }

    [Fact]
    public void A_failure_with_attempts_left_is_retried_after_the_backoff()
    {
        var options = new JobOptions { Backoff = new BackoffOptions { Base = TimeSpan.FromSeconds(5), Jitter = 0 } };
        Assert.Equal(Now.AddSeconds(10), FailureDecision.RetryAt(options, 2, 5, new InvalidOperationException(), Now, 0.5));
    }

    [Fact]
    public void The_last_attempt_fails_for_good()
        => Assert.Null(FailureDecision.RetryAt(new JobOptions(), 5, 5, new InvalidOperationException(), Now, 0.5));

    [Fact]
    public void Discard_on_exceptions_and_their_subtypes_fail_at_once()
    {
        var options = new JobOptions().DiscardOnException<ArgumentException>();
        Assert.Null(FailureDecision.RetryAt(options, 1, 5, new ArgumentNullException("x"), Now, 0.5));
        Assert.NotNull(FailureDecision.RetryAt(options, 1, 5, new InvalidOperationException(), Now, 0.5));
    }

    [Fact]
    public void Bad_arguments_and_unknown_kinds_are_never_retried()
    {
        Assert.Null(FailureDecision.RetryAt(new JobOptions(), 1, 5, new JobArgumentsException("bad"), Now, 0.5));
        Assert.Null(FailureDecision.RetryAt(new JobOptions(), 1, 5, new UnknownJobKindException("unknown"), Now, 0.5));
    }
}
