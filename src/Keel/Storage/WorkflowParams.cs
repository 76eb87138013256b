using System.Data.Common;

namespace Keel.Storage;

/// <summary>One parent of a job to insert: an existing job, or an earlier job of the same insert.</summary>
/// <param name="ParentId">An existing job's id; null when <paramref name="ParentIndex"/> names the parent.</param>
/// <param name="ParentIndex">The position of an earlier job of the same insert (smaller than the child's own).</param>
/// <param name="When">The parent's outcomes the child waits for.</param>
/// <param name="OnUnmet">What the child does on another outcome.</param>
public sealed record NewDependency(long? ParentId, int? ParentIndex, ContinueWhen When, UnmetPolicy OnUnmet);

/// <summary>A callback of a new batch: a job enqueued, exactly once, when the batch's counters say so.</summary>
/// <param name="On">Which outcome.</param>
/// <param name="Job">The job (already serialized; without dependencies).</param>
public sealed record NewBatchCallback(BatchEvent On, NewJob Job);

/// <summary>Parameters of <see cref="IKeelStorage.BatchStartAsync"/>.</summary>
/// <param name="Jobs">The batch's jobs, in order; their dependencies may name earlier ones by index.</param>
/// <param name="Callbacks">Its callbacks.</param>
/// <param name="Now">The time that decides ready versus scheduled; null means the database clock.</param>
/// <param name="Connection">The caller's open connection, when the batch must join the caller's work.</param>
/// <param name="Transaction">The caller's transaction on <paramref name="Connection"/>, if any.</param>
public sealed record BatchStartParams(
    IReadOnlyList<NewJob> Jobs,
    IReadOnlyList<NewBatchCallback> Callbacks,
    DateTimeOffset? Now,
    DbConnection? Connection = null,
    DbTransaction? Transaction = null)
{
    /// <summary>The batch it counts in as one job, if any (that batch must not have completed).</summary>
    public long? ParentBatchId { get; init; }

    /// <summary>Words for people.</summary>
    public string? Description { get; init; }
}

/// <summary>The result of <see cref="IKeelStorage.BatchStartAsync"/>.</summary>
/// <param name="BatchId">The new batch.</param>
/// <param name="JobIds">Its jobs' ids, in input order.</param>
public sealed record BatchStartResult(long BatchId, IReadOnlyList<long> JobIds);

/// <summary>Parameters of <see cref="IKeelStorage.BatchesListAsync"/>.</summary>
/// <param name="Pending">True: only batches not completed; false: only completed ones; null: all.</param>
/// <param name="BeforeId">The page's exclusive upper bound on ids; null for the newest.</param>
/// <param name="Limit">The page size.</param>
public sealed record BatchesListParams(bool? Pending, long? BeforeId, int Limit);

/// <summary>Parameters of <see cref="IKeelStorage.BatchJobsListAsync"/>.</summary>
/// <param name="BatchId">The batch.</param>
/// <param name="BeforeId">The page's exclusive upper bound on job ids; null for the newest.</param>
/// <param name="Limit">The page size.</param>
public sealed record BatchJobsListParams(long BatchId, long? BeforeId, int Limit);
