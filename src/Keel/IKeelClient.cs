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

    /// <summary>
    /// Starts a batch: its jobs and callbacks, inserted in one transaction (bulk round trips). When every job has
    /// settled, the transaction of the last outcome enqueues the callbacks, exactly once.
    /// </summary>
    /// <param name="build">Adds the jobs (<see cref="BatchBuilder.Add{TJob, TArgs}"/>) and callbacks.</param>
    /// <param name="options">A parent batch, a description.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The batch id.</returns>
    Task<long> StartBatchAsync(Action<BatchBuilder> build, BatchOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Starts a batch inside the caller's transaction: it exists if and only if the caller commits.</summary>
    /// <param name="build">Adds the jobs and callbacks.</param>
    /// <param name="options">A parent batch, a description.</param>
    /// <param name="connection">The caller's open connection to Keel's database.</param>
    /// <param name="transaction">The caller's transaction on <paramref name="connection"/>, or null for autocommit.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The batch id.</returns>
    Task<long> StartBatchAsync(Action<BatchBuilder> build, BatchOptions? options, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds jobs to a batch that has not completed (also from a job of the batch: <see cref="JobContext.BatchId"/>).
    /// </summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="requests">The jobs.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The new jobs' ids, in order.</returns>
    /// <exception cref="KeelBatchClosedException">The batch has completed, or does not exist.</exception>
    Task<IReadOnlyList<long>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default);

    /// <summary>Reads a batch with its counts and callbacks; null when no such batch exists.</summary>
    /// <param name="batchId">The batch id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The batch, or null.</returns>
    Task<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default);
}
