namespace Keel.Storage.Conformance;

/// <summary>The arguments of <see cref="ConformanceJob"/>.</summary>
/// <param name="N">A number, unused.</param>
internal sealed record ConformanceJobArgs(int N);

/// <summary>The job kind <c>count</c> the recurring tests register (the scheduler needs a registered kind); it does nothing.</summary>
[Job("count")]
internal sealed class ConformanceJob : IJob<ConformanceJobArgs>
{
    /// <inheritdoc />
    public Task PerformAsync(ConformanceJobArgs args, JobContext context, CancellationToken cancellationToken) => Task.CompletedTask;
}
