using System.Data.Common;

namespace Keel;

/// <summary>Enqueues jobs and reads them back.</summary>
public interface IKeelClient
{
    /// <summary>Enqueues one job; it is ready at once unless its options schedule it.</summary>
    /// <param name="request">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The new job's id.</returns>
    Task<long> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default);

    /// <summary>Enqueues many jobs in one round trip and one transaction.</summary>
    /// <param name="requests">The jobs.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The new jobs' ids, in the order of <paramref name="requests"/>.</returns>
    Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues jobs on the caller's own open connection (and transaction) to the same database: the jobs exist
    /// if and only if the caller's transaction commits.
    /// </summary>
    /// <param name="requests">The jobs.</param>
    /// <param name="connection">The caller's open connection to Keel's database.</param>
    /// <param name="transaction">The caller's transaction on <paramref name="connection"/>, or null for autocommit.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The new jobs' ids, in order.</returns>
    Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken = default);

    /// <summary>Reads a job with its state, attempts and error history; null when no such job exists.</summary>
    /// <param name="jobId">The job id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job, or null.</returns>
    Task<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default);
}
