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

    public async Task<long> StartBatchAsync(Action<BatchBuilder> build, BatchOptions? options = null, CancellationToken cancellationToken = default)
    {
        var id = await inner.StartBatchAsync(build, options, cancellationToken);
        await host().RunUntilIdleAsync(cancellationToken: cancellationToken);
        return id;
    }

    // As with EnqueueManyAsync in the caller's transaction: the batch's jobs wait for the next drain.
    public Task<long> StartBatchAsync(Action<BatchBuilder> build, BatchOptions? options, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken = default)
        => inner.StartBatchAsync(build, options, connection, transaction, cancellationToken);

    public async Task<IReadOnlyList<long>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        var ids = await inner.AddToBatchAsync(batchId, requests, cancellationToken);
        await host().RunUntilIdleAsync(cancellationToken: cancellationToken);
        return ids;
    }

    public Task<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default)
        => inner.GetBatchAsync(batchId, cancellationToken);

    public Task<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default)
        => inner.GetJobAsync(jobId, cancellationToken);
}
