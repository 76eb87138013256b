using System.Data.Common;

namespace Keel.Testing;

/// <summary>
/// Inline mode's client: enqueues through the real client, then runs the ready jobs before returning. An enqueue made
/// by a job that is running already adds to the drain in progress instead of starting another.
/// </summary>
internal sealed class InlineKeelClient(IKeelClient inner, Func<KeelTestHost> host) : IKeelClient
{
    public async Task<long> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
    {
        var id = await inner.EnqueueAsync(request, cancellationToken);
        await host().RunUntilIdleAsync(cancellationToken: cancellationToken);
        return id;
    }

    public async Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        var ids = await inner.EnqueueManyAsync(requests, cancellationToken);
        await host().RunUntilIdleAsync(cancellationToken: cancellationToken);
        return ids;
    }

    // The caller's transaction is still open: its jobs cannot run before it commits, so they wait for the next drain.
    public Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken = default)
        => inner.EnqueueManyAsync(requests, connection, transaction, cancellationToken);

    public Task<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default)
        => inner.GetJobAsync(jobId, cancellationToken);
}
