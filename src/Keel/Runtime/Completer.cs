using System.Threading.Channels;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>How a run's claim ends.</summary>
internal enum OutcomeKind
{
    /// <summary>The job finished: complete it (batched).</summary>
    Finished,

    /// <summary>The job failed: record the attempt, schedule a retry or fail it for good.</summary>
    Failed,

    /// <summary>Back to ready without counting an attempt (stop, lost lease, interrupted), with the reason recorded.</summary>
    Released,

    /// <summary>The claim is already gone (its process was pruned): nothing to write, the slot is free.</summary>
    Void,

    /// <summary>Someone cancelled the job and its run stopped (or was given up on): discard it, with the reason recorded.</summary>
    Cancelled,
}

/// <summary>One run's outcome, posted to the <see cref="Completer"/>: the only road from a run to the database.</summary>
/// <param name="ProcessId">The process row that holds the claim.</param>
/// <param name="Job">The claimed job.</param>
/// <param name="Kind">What to write.</param>
internal sealed record JobOutcome(long ProcessId, ClaimedJob Job, OutcomeKind Kind)
{
    /// <summary>For <see cref="OutcomeKind.Failed"/>: the failure.</summary>
    public Exception? Error { get; init; }

    /// <summary>For <see cref="OutcomeKind.Failed"/>: when to retry; null fails the job for good.</summary>
    public DateTimeOffset? RetryAt { get; init; }

    /// <summary>For <see cref="OutcomeKind.Released"/> and <see cref="OutcomeKind.Cancelled"/>: why.</summary>
    public RunEnding? Ending { get; init; }
}

/// <summary>A claim to make in the round trip that writes a batch of completions (a busy worker's next claim).</summary>
/// <param name="Reservation">The slots reserved for it.</param>
/// <param name="Claim">The claim.</param>
internal sealed record ClaimAlong(Slots.Reservation Reservation, JobsClaimParams Claim);

/// <summary>
/// Writes every run's outcome under its claim and gives the slot back when it is written: finished runs in batches
/// (whatever finished while the previous batch was being written goes in the next statement, with the worker's next
/// claim in the same round trip), failures and releases as they come. A claim is never settled before its outcome is
/// written, so a worker's stop waits for exactly the claims it holds, and a completion that arrives while it stops is
/// written, never released. Each write is still guarded by its own claim: batching never lets a late result through.
/// </summary>
internal sealed class Completer
{
    private const int MaxBatch = 1000;

    // Two writes in flight: enough to overlap one batch's commit with the next batch's statement; more only adds
    // connections (measured with the bench's throughput scenario).
    private const int MaxConcurrentWrites = 2;
    private readonly Channel<JobOutcome> _channel = Channel.CreateUnbounded<JobOutcome>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IKeelStorage _storage;
    private readonly ILogger _logger;
    private readonly OutageLog _outage;
    private readonly KeelClock _clock;
    private readonly bool _preserveFinishedJobs;
    private readonly Slots _slots;
    private readonly Func<string> _runner;
    private readonly CancellationTokenSource _abandon = new();
    private readonly Task _loop;

    // slots: the worker's, settled here once each outcome is written; runner: who runs the jobs, for their history.
    public Completer(IKeelStorage storage, ILogger logger, OutageLog outage, KeelClock clock, bool preserveFinishedJobs, Slots slots, Func<string> runner)
    {
        _storage = storage;
        _logger = logger;
        _outage = outage;
        _clock = clock;
        _preserveFinishedJobs = preserveFinishedJobs;
        _slots = slots;
        _runner = runner;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>
    /// Asked before each batch of completions with the process and how many slots the batch frees: the claim to make in
    /// the same round trip (slots reserved), or null for none.
    /// </summary>
    public Func<long, int, ClaimAlong?>? PlanClaimAlong { get; set; }

    /// <summary>
    /// Called once after each written batch, after its slots were settled, with the claim made along and the jobs it
    /// claimed (none when it failed): the worker starts them, and wakes to claim for whatever else is free.
    /// </summary>
    public Action<ClaimAlong?, IReadOnlyList<ClaimedJob>>? BatchWritten { get; set; }

    /// <summary>Called with how long each written batch of completions took, in timestamp ticks.</summary>
    public Action<long>? RoundTripMeasured { get; set; }

    /// <summary>Queues an outcome. After <see cref="DrainAsync"/> its claim stays in the database (released or recovered later).</summary>
    public void Post(JobOutcome outcome)
    {
        if (!_channel.Writer.TryWrite(outcome))
        {
            _slots.Settle(outcome.Job.ClaimId);
        }
    }

    /// <summary>
    /// Writes everything posted so far and stops. After <paramref name="timeout"/> (the database is down, say) it gives
    /// up: those claims stay in the database and are released by deregistration or recovered, so the jobs run again.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _channel.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            await _abandon.CancelAsync();
            await _loop;
        }
        finally
        {
            _abandon.Dispose();
        }
    }

    private async Task RunAsync()
    {
        var writing = new List<Task>();
        using var writeSlots = new SemaphoreSlim(MaxConcurrentWrites);
        try
        {
            while (await _channel.Reader.WaitToReadAsync())
            {
                await writeSlots.WaitAsync(_abandon.Token);

                // Jobs claimed together finish together: let the ones already scheduled post theirs first.
                await Task.Yield();
                var batch = new List<JobOutcome>();
                while (batch.Count < MaxBatch && _channel.Reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                if (batch.Count == 0)
                {
                    writeSlots.Release();
                    continue;
                }

                writing.RemoveAll(task => task.IsCompleted);
                writing.Add(WriteBatchAsync(batch, writeSlots));
            }
        }
        catch (Exception) when (_abandon.IsCancellationRequested)
        {
        }
        finally
        {
            await Task.WhenAll(writing);

            // Whatever was not written stays claimed in the database (released or recovered later); free its slot.
            while (_channel.Reader.TryRead(out var item))
            {
                _slots.Settle(item.Job.ClaimId);
            }
        }
    }

    /// <summary>
    /// Writes one batch while the loop may already gather and start the next (up to <see cref="MaxConcurrentWrites"/>
    /// at once): a worker's batches then share the server's commit flushes instead of waiting for each other's.
    /// </summary>
    private async Task WriteBatchAsync(List<JobOutcome> batch, SemaphoreSlim writeSlots)
    {
        try
        {
            foreach (var group in batch.GroupBy(item => item.ProcessId))
            {
                foreach (var item in group.Where(o => o.Kind == OutcomeKind.Void))
                {
                    _slots.Settle(item.Job.ClaimId);
                }

                foreach (var item in group.Where(o => o.Kind == OutcomeKind.Failed))
                {
                    await WriteFailureAsync(item);
                }

                foreach (var item in group.Where(o => o.Kind == OutcomeKind.Cancelled))
                {
                    await WriteCancelAsync(item);
                }

                foreach (var released in group.Where(o => o.Kind == OutcomeKind.Released).GroupBy(o => o.Ending))
                {
                    await WriteReleasesAsync(group.Key, released.Key, [.. released]);
                }

                var finished = group.Where(o => o.Kind == OutcomeKind.Finished).ToList();
                if (finished.Count > 0)
                {
                    await WriteFinishedAsync(group.Key, finished);
                }
                else
                {
                    BatchWritten?.Invoke(null, []); // Slots came back: the worker may claim.
                }
            }
        }
        catch (Exception) when (_abandon.IsCancellationRequested)
        {
        }
        finally
        {
            writeSlots.Release();
        }
    }

    private async Task WriteFinishedAsync(long processId, List<JobOutcome> finished)
    {
        var claims = finished.Select(o => o.Job.Ref).ToList();
        var along = PlanClaimAlong?.Invoke(processId, claims.Count);
        HashSet<long> accepted = [];
        IReadOnlyList<ClaimedJob> claimed = [];
        var written = false;
        try
        {
            var started = _clock.TimeProvider.GetTimestamp();
            (accepted, claimed) = await CompleteAsync(processId, claims, along?.Claim);
            written = true;
            RoundTripMeasured?.Invoke(_clock.TimeProvider.GetTimestamp() - started);
        }
        finally
        {
            // Slots first, then the jobs claimed into them: the worker never counts more than it has.
            foreach (var item in finished)
            {
                _slots.Settle(item.Job.ClaimId);
            }

            BatchWritten?.Invoke(along, claimed);
        }

        if (!written)
        {
            return;
        }

        foreach (var item in finished)
        {
            var job = item.Job;
            if (accepted.Contains(job.ClaimId))
            {
                KeelMetrics.Finished.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
                Log.JobFinished(_logger, job.JobId, job.Kind, job.Attempt);
            }
            else
            {
                await RejectedAsync(processId, job, "finished");
            }
        }
    }

    private async Task<(HashSet<long> Accepted, IReadOnlyList<ClaimedJob> Claimed)> CompleteAsync(long processId, List<ClaimRef> claims, JobsClaimParams? along)
    {
        var parameters = new JobsCompleteParams(processId, claims, _clock.StorageNow, _preserveFinishedJobs) { Runner = _runner() };
        if (along is not null)
        {
            try
            {
                var result = await _storage.JobsCompleteAndClaimAsync(parameters, along, _abandon.Token);
                _outage.Succeeded();
                return (result.Completed.ToHashSet(), result.Claimed);
            }
#pragma warning disable CA1031 // Nothing was written: write the completions alone, with their retries; the claim can wait.
            catch (Exception) when (!_abandon.IsCancellationRequested)
#pragma warning restore CA1031
            {
            }
        }

        return ((await WriteWithRetryAsync("complete jobs", ct => _storage.JobsCompleteAsync(parameters, ct))).ToHashSet(), []);
    }

    private async Task WriteFailureAsync(JobOutcome outcome)
    {
        var job = outcome.Job;
        var error = outcome.Error!;
        try
        {
            var held = await WriteWithRetryAsync(
                "fail job",
                ct => _storage.JobFailAsync(new JobFailParams(outcome.ProcessId, job.Ref, FailureRecord.From(error), outcome.RetryAt, _clock.StorageNow) { Runner = _runner() }, ct));
            if (!held)
            {
                await RejectedAsync(outcome.ProcessId, job, "failed");
            }
            else if (outcome.RetryAt is { } at)
            {
                KeelMetrics.Retried.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
                Log.JobRetrying(_logger, error, job.JobId, job.Kind, job.Attempt, at);
            }
            else
            {
                KeelMetrics.Failed.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind), new("error.type", error.GetType().FullName));
                Log.JobFailed(_logger, error, job.JobId, job.Kind, job.Attempt);
            }
        }
        finally
        {
            _slots.Settle(job.ClaimId);
        }
    }

    private async Task WriteCancelAsync(JobOutcome outcome)
    {
        var job = outcome.Job;
        var ending = outcome.Ending!;
        try
        {
            var held = await WriteWithRetryAsync(
                "cancel job",
                ct => _storage.JobCancelFinishAsync(new JobCancelFinishParams(outcome.ProcessId, job.Ref, ending, _clock.StorageNow) { Runner = _runner() }, ct));
            if (held)
            {
                KeelMetrics.Cancelled.Add(1, new KeyValuePair<string, object?>("keel.outcome", ending.Cause), KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
                Log.JobCancelled(_logger, job.JobId, job.Kind, ending.Cause);
            }
            else
            {
                await RejectedAsync(outcome.ProcessId, job, "cancelled");
            }
        }
        finally
        {
            _slots.Settle(job.ClaimId);
        }
    }

    private async Task WriteReleasesAsync(long processId, RunEnding? ending, List<JobOutcome> released)
    {
        try
        {
            await WriteWithRetryAsync(
                "release claims",
                ct => _storage.ClaimsReleaseAsync(new ClaimsReleaseParams(processId, [.. released.Select(o => o.Job.ClaimId)], _clock.StorageNow) { Reason = ending, Runner = _runner() }, ct));
        }
        finally
        {
            foreach (var item in released)
            {
                _slots.Settle(item.Job.ClaimId);
            }
        }
    }

    /// <summary>A write that must not be dropped: retried until it lands or the drain deadline abandons it.</summary>
    private async Task<T> WriteWithRetryAsync<T>(string operation, Func<CancellationToken, Task<T>> write)
    {
        var backoff = Backoff.ForStorage();
        while (true)
        {
            try
            {
                var result = await write(_abandon.Token);
                _outage.Succeeded();
                return result;
            }
#pragma warning disable CA1031 // The claim keeps the job safe meanwhile; a non-transient error is retried too (logged once).
            catch (Exception e) when (!_abandon.IsCancellationRequested)
#pragma warning restore CA1031
            {
                var delay = backoff.Next();
                _outage.Failed(e, operation, delay);
                await Task.Delay(delay, CancellationToken.None);
            }
        }
    }

    private async Task RejectedAsync(long processId, ClaimedJob job, string result)
    {
        Log.LateResultRejected(_logger, job.JobId, job.ClaimId, processId);
        KeelMetrics.LateResultsRejected.Add(1, new KeyValuePair<string, object?>("keel.result", result));
        try
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _storage.RunRecordAsync(
                new RunRecordParams(job.Ref, new RunEnding(RunOutcomes.Rejected, "claim-lost", $"the run {result}, but its claim had been recovered elsewhere: the result was not written"), _runner(), job.ClaimedAt, _clock.StorageNow),
                deadline.Token);
        }
#pragma warning disable CA1031 // History only: the rejection itself is logged and counted above.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
