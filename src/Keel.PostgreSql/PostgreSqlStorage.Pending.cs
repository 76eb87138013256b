using Keel.Storage;

namespace Keel.PostgreSql;

// TEMPORARY: replaced by the PostgreSQL implementation being merged; deleted before merge.
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public Task<int> JobsRetryAsync(JobsSelectionParams parameters, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <inheritdoc />
    public Task<int> JobsDiscardAsync(JobsSelectionParams parameters, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <inheritdoc />
    public Task<bool> JobRunNowAsync(JobRunNowParams parameters, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <inheritdoc />
    public Task<IReadOnlyList<QueueInfo>> QueuesListAsync(DateTimeOffset? now, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <inheritdoc />
    public Task QueuePauseAsync(QueuePauseParams parameters, CancellationToken cancellationToken) => throw new NotSupportedException();

    /// <inheritdoc />
    public Task<int> JobsClearFinishedAsync(JobsClearFinishedParams parameters, CancellationToken cancellationToken) => Task.FromResult(0);

    /// <inheritdoc />
    public Task<int> ConcurrencyMaintainAsync(ConcurrencyMaintainParams parameters, CancellationToken cancellationToken) => Task.FromResult(0);
}
