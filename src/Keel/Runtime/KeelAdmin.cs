using Keel.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Keel.Runtime;

/// <summary>The <see cref="IKeelAdmin"/> over the store.</summary>
internal sealed class KeelAdmin(IKeelStorage storage, IOptions<KeelOptions> options, ILoggerFactory loggerFactory, KeelClock clock, JobSignal signal) : IKeelAdmin
{
    private static readonly WorkerLostCause OperatorPrune = new("operator", "pruned by an operator");

    public Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(CancellationToken cancellationToken = default)
        => storage.ProcessesListAsync(new ProcessesListParams(null, clock.StorageNow), cancellationToken);

    public Task<IReadOnlyList<ClaimInfo>> ListClaimsAsync(bool staleOnly = false, long? processId = null, int limit = 1000, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return storage.ClaimsListAsync(new ClaimsListParams(processId, staleOnly ? options.Value.AliveThreshold : null, limit, clock.StorageNow), cancellationToken);
    }

    private readonly ILogger _logger = loggerFactory.CreateLogger("Keel.Maintenance");

    public Task<RecoveryResult> ReleaseClaimsAsync(IReadOnlyList<long> claimIds, CancellationToken cancellationToken = default)
        => RecoverClaimsAsync(new ClaimsRecoverParams(claimIds, ClaimAction.Release, new WorkerLostCause("operator", "released by an operator"), clock.StorageNow), cancellationToken);

    public Task<RecoveryResult> FailClaimsAsync(IReadOnlyList<long> claimIds, string reason, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        return RecoverClaimsAsync(new ClaimsRecoverParams(claimIds, ClaimAction.Fail, new WorkerLostCause("operator", "failed by an operator: " + reason), clock.StorageNow), cancellationToken);
    }

    public async Task<RecoveryResult?> PruneProcessAsync(long processId, CancellationToken cancellationToken = default)
    {
        var recovery = await storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(processId, OperatorPrune, clock.StorageNow), cancellationToken);
        if (recovery is not null)
        {
            Log.ProcessPruned(_logger, processId.ToString(System.Globalization.CultureInfo.InvariantCulture), processId, OperatorPrune.Code, recovery.Retried, recovery.Failed, OperatorPrune.Description);
            KeelMetrics.RecordRecovery(OperatorPrune.Code, recovery);
        }

        return recovery;
    }

    private async Task<RecoveryResult> RecoverClaimsAsync(ClaimsRecoverParams parameters, CancellationToken cancellationToken)
    {
        var recovery = await storage.ClaimsRecoverAsync(parameters, cancellationToken);
        if (recovery.Total > 0)
        {
            Log.ClaimsRecoveredByOperator(_logger, recovery.Released, recovery.Retried, recovery.Failed, parameters.Cause.Description);
            KeelMetrics.RecordRecovery(parameters.Cause.Code, recovery);
        }

        return recovery;
    }

    public Task<IReadOnlyList<PrunedProcess>> PruneDeadProcessesAsync(CancellationToken cancellationToken = default)
        => new Maintenance(storage, options.Value, loggerFactory.CreateLogger("Keel.Maintenance"), clock, static () => new HashSet<long>()).RunOnceAsync(cancellationToken);

    private const int BatchSize = 500;

    public Task<IReadOnlyList<QueueInfo>> ListQueuesAsync(CancellationToken cancellationToken = default)
        => storage.QueuesListAsync(clock.StorageNow, cancellationToken);

    public Task PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        return storage.QueuePauseAsync(new QueuePauseParams(queue, true, clock.StorageNow), cancellationToken);
    }

    public async Task ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        await storage.QueuePauseAsync(new QueuePauseParams(queue, false, clock.StorageNow), cancellationToken);
        signal.Notify();
    }

    public Task<long> ClearQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        return DiscardJobsAsync(null, new JobFilter(Queue: queue), [JobState.Ready], null, cancellationToken);
    }

    public async Task<long> RetryJobsAsync(IReadOnlyList<long>? jobIds, JobFilter? filter = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var total = await InBatchesAsync(jobIds, ct => storage.JobsRetryAsync(new JobsSelectionParams(jobIds, filter, null, BatchSize, clock.StorageNow), ct), progress, cancellationToken);
        if (total > 0)
        {
            signal.Notify();
        }

        return total;
    }

    public async Task<long> DiscardJobsAsync(IReadOnlyList<long>? jobIds, JobFilter? filter = null, IReadOnlyCollection<JobState>? states = null, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        var discarded = await InBatchesAsync(jobIds, ct => storage.JobsDiscardAsync(new JobsSelectionParams(jobIds, filter, states, BatchSize, clock.StorageNow), ct), progress, cancellationToken);
        RecordDiscarded(discarded, filter?.Queue);
        return discarded;
    }

    public async Task<bool> CancelJobAsync(long jobId, CancellationToken cancellationToken = default)
        => await CancelAsync(jobId, (string?)null, cancellationToken) is CancelResult.Cancelled or CancelResult.Requested or CancelResult.AlreadyRequested;

    public Task<CancelResult> CancelAsync(long jobId, string? reason = null, CancellationToken cancellationToken = default)
        => CancelAsync(jobId, new CancelOptions { Reason = reason }, cancellationToken);

    public async Task<CancelResult> CancelAsync(long jobId, CancelOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var why = string.IsNullOrWhiteSpace(options.Reason) ? "cancelled by an operator" : options.Reason.Trim();
        if (why.Length > MaxCancelReasonLength)
        {
            throw new ArgumentException($"the cancel reason is {why.Length} characters long; at most {MaxCancelReasonLength} are kept with the job", nameof(options));
        }

        // The job may move between the looks (claimed after the discard missed it, released after the request missed
        // it): look again until one of them lands or it has ended.
        for (var look = 0; look < 5; look++)
        {
            if (!options.Resume)
            {
                var discarded = await storage.JobsDiscardAsync(new JobsSelectionParams([jobId], null, NotStarted, 1, clock.StorageNow), cancellationToken);
                if (discarded == 1)
                {
                    RecordDiscarded(1, null);
                    await RecordCancelledBeforeStartAsync(jobId, why, cancellationToken);
                    return CancelResult.Cancelled;
                }
            }

            var request = await storage.ClaimCancelRequestAsync(new ClaimCancelRequestParams(jobId, why, clock.StorageNow) { Resume = options.Resume }, cancellationToken);
            if (request is not null)
            {
                if (request.AlreadyRequested)
                {
                    return CancelResult.AlreadyRequested;
                }

                KeelMetrics.CancelRequested.Add(1, new KeyValuePair<string, object?>("keel.state", "claimed"));
                Log.JobCancelRequested(_logger, jobId, request.ProcessId, options.Resume ? why + " (resumes)" : why);
                signal.NotifyCancels(); // A worker of this process runs it, maybe: it need not wait for its poll.
                return CancelResult.Requested;
            }

            var job = await storage.JobGetAsync(jobId, cancellationToken);
            if (job is null)
            {
                return CancelResult.NotFound;
            }

            if (job.State is JobState.Finished or JobState.Failed or JobState.Discarded)
            {
                return CancelResult.AlreadyEnded;
            }

            if (options.Resume && job.State != JobState.Claimed)
            {
                return CancelResult.NotRunning;
            }
        }

        throw new InvalidOperationException($"job {jobId} kept changing state while it was being cancelled; try again");
    }

    private const int MaxCancelReasonLength = 1000;

    // An awaiting continuation has not started either: its discard settles its own children like any other.
    private static readonly JobState[] NotStarted = [JobState.Ready, JobState.Scheduled, JobState.Blocked, JobState.Awaiting];

    /// <summary>The history row of a job cancelled before it ran; history only, so a failure to write it is logged, not thrown.</summary>
    private async Task RecordCancelledBeforeStartAsync(long jobId, string why, CancellationToken cancellationToken)
    {
        KeelMetrics.CancelRequested.Add(1, new KeyValuePair<string, object?>("keel.state", "not-started"));
        KeelMetrics.Cancelled.Add(1, new KeyValuePair<string, object?>("keel.outcome", RunCauses.CancelledBeforeStart));
        Log.JobCancelledBeforeStart(_logger, jobId, why);
        try
        {
            var attempts = (await storage.JobGetAsync(jobId, cancellationToken))?.Attempts ?? 0;
            await storage.RunRecordAsync(new RunRecordParams(new ClaimRef(0, jobId, attempts), new RunEnding(RunOutcomes.Cancelled, RunCauses.CancelledBeforeStart, why), null, null, clock.StorageNow), cancellationToken);
        }
#pragma warning disable CA1031 // The job is discarded already; only its history row is missing.
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            Log.JobCancelHistoryLost(_logger, e, jobId);
        }
    }

    private void RecordDiscarded(long count, string? queue)
    {
        if (count > 0)
        {
            // The queue is known when a whole queue (or a queue filter) was discarded; it is not looked up per job.
            KeelMetrics.Discarded.Add(count, new KeyValuePair<string, object?>("keel.reason", "operator"), new KeyValuePair<string, object?>("keel.queue", queue));
            Log.JobsDiscardedByOperator(_logger, count);
        }
    }

    public async Task<bool> RunJobNowAsync(long jobId, CancellationToken cancellationToken = default)
    {
        var ran = await storage.JobRunNowAsync(new JobRunNowParams(jobId, clock.StorageNow), cancellationToken);
        if (ran)
        {
            signal.Notify();
        }

        return ran;
    }

    /// <summary>Calls a batch operation until it reports nothing left (ids: until they are all handled).</summary>
    private static async Task<long> InBatchesAsync(IReadOnlyList<long>? jobIds, Func<CancellationToken, Task<int>> batch, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        if (jobIds is { Count: 0 })
        {
            return 0;
        }

        long total = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var done = await batch(cancellationToken);
            total += done;
            progress?.Report(total);
            if (done < BatchSize || (jobIds is not null && total >= jobIds.Count))
            {
                return total;
            }
        }
    }
}
