using Keel.Runtime;
using Keel.Storage;

namespace Keel.Testing;

public sealed partial class KeelTestHost
{
    /// <summary>
    /// Runs every ready job, one at a time, until none is left — jobs they enqueue included; with
    /// <see cref="DrainOptions.AdvanceTime"/>, moves the fake clock to each scheduled job, retry (and, up to
    /// <see cref="DrainOptions.Until"/>, recurring tick) in turn and runs it too.
    /// </summary>
    /// <param name="options">Whether and how far to move the clock; null runs only what is due now.</param>
    /// <param name="cancellationToken">Cancels the drain (a job running then is released back to ready).</param>
    /// <returns>The runs made.</returns>
    /// <exception cref="InvalidOperationException">More than <see cref="DrainOptions.MaxRuns"/> runs: a job keeps enqueuing itself.</exception>
    public async Task<DrainResult> RunUntilIdleAsync(DrainOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new DrainOptions();
        if (options.Until is { } until && until < Time.GetUtcNow())
        {
            throw new ArgumentException($"DrainOptions.Until ({until:O}) is before the fake clock's time ({Time.GetUtcNow():O}): the clock never goes back", nameof(options));
        }

        if (_inDrain.Value)
        {
            // An inline enqueue from a job that this drain is running: the drain's loop runs it next.
            return new DrainResult([], Time.GetUtcNow());
        }

        await _drainGate.WaitAsync(cancellationToken);
        _inDrain.Value = true;
        try
        {
            return await DrainAsync(options, cancellationToken);
        }
        finally
        {
            _inDrain.Value = false;
            _drainGate.Release();
        }
    }

    private async Task<DrainResult> DrainAsync(DrainOptions options, CancellationToken cancellationToken)
    {
        var runs = new List<KeelTestRun>();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var now = Time.GetUtcNow();
            var pass = await MakeDueReadyAsync(now, cancellationToken);
            var claimed = await ClaimOneAsync(_workerId, now, cancellationToken);
            if (claimed.Count > 0)
            {
                if (runs.Count >= options.MaxRuns)
                {
                    await _storage.ClaimsReleaseAsync(new ClaimsReleaseParams(_workerId, [claimed[0].ClaimId], now) { Reason = new RunEnding(RunOutcomes.Released, "stop", "the test drain stopped at its run limit"), Runner = _runner }, CancellationToken.None);
                    throw new InvalidOperationException($"RunUntilIdleAsync made {options.MaxRuns} runs and jobs are still ready (the last: job {claimed[0].JobId}, {claimed[0].Kind}): a job that enqueues itself never lets the queue drain; raise DrainOptions.MaxRuns if this many is expected");
                }

                runs.Add(await RunClaimedAsync(claimed[0], now, cancellationToken));
                continue;
            }

            if (!options.AdvanceTime)
            {
                break;
            }

            var next = await NextScheduledAtAsync(cancellationToken);
            if (options.Until is { } until)
            {
                if (pass.NextRunAt is { } tick && (next is null || tick < next))
                {
                    next = tick;
                }

                if (next is null || next > until)
                {
                    if (now >= until)
                    {
                        break;
                    }

                    next = until;
                }
            }

            if (next is null)
            {
                break;
            }

            if (next <= now)
            {
                // Due yet not made ready (the dispatcher found nothing to move): the clock cannot help it.
                break;
            }

            Time.SetUtcNow(next.Value);
        }

        return new DrainResult(runs, Time.GetUtcNow());
    }

    /// <summary>
    /// Claims one ready job, a suspect (a job whose worker died under it, which runs alone) when no other is ready: the
    /// test host runs one job at a time, so a suspect here is always alone.
    /// </summary>
    private async Task<IReadOnlyList<ClaimedJob>> ClaimOneAsync(long processId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var claimed = await _storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, 1, now), cancellationToken);
        return claimed.Count > 0 ? claimed : await _storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, 1, now) { Suspects = true }, cancellationToken);
    }

    /// <summary>Moves due scheduled jobs to ready and enqueues due recurring ticks, as the dispatcher and scheduler would.</summary>
    private async Task<SchedulerPass> MakeDueReadyAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        while (await _storage.ScheduledDispatchAsync(new ScheduledDispatchParams(500, now), cancellationToken) > 0)
        {
        }

        return await _scheduler.RunOnceAsync(now, cancellationToken);
    }

    /// <summary>The earliest time of a scheduled job (a delayed job or a retry); null when none is scheduled.</summary>
    private async Task<DateTimeOffset?> NextScheduledAtAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? earliest = null;
        long? before = null;
        while (true)
        {
            var page = await _storage.JobsListAsync(new JobsListParams(JobState.Scheduled, null, null, null, before, 500), cancellationToken);
            foreach (var job in page)
            {
                if (job.ScheduledAt is { } at && (earliest is null || at < earliest))
                {
                    earliest = at;
                }
            }

            if (page.Count < 500)
            {
                return earliest;
            }

            before = page[^1].Id;
        }
    }

    /// <summary>Runs one claimed job and writes its outcome under the claim, as a worker does.</summary>
    private async Task<KeelTestRun> RunClaimedAsync(ClaimedJob job, DateTimeOffset now, CancellationToken cancellationToken)
    {
        _killRequested = false;
        var outcome = await _executor.RunAsync(job, Control(_workerId, job, cancellationToken));
        if (_killRequested)
        {
            // The job called KillWorker: this worker dies with its claim, and a new one goes on draining.
            _killRequested = false;
            var (_, _, crashed) = await RecoverCrashedAsync(_workerId, job, "KillWorker called by the job", now);
            await RegisterWorkerAsync(CancellationToken.None);
            return crashed;
        }

        switch (outcome.Result)
        {
            case RunResult.Succeeded:
                await _storage.JobsCompleteAsync(new JobsCompleteParams(_workerId, [job.Ref], Time.GetUtcNow(), PreserveFinishedJobs: true) { Runner = _runner }, CancellationToken.None);
                return Recorded(new KeelTestRun(job.JobId, job.Kind, job.Attempt, KeelTestRunResult.Succeeded, null, now));
            case RunResult.Failed:
                var error = outcome.Error!;
                var retryAt = FailureDecision.RetryAt(outcome.Options ?? new JobOptions(), job.Attempt, job.MaxAttempts, error, Time.GetUtcNow(), _jitter.NextDouble());
                await _storage.JobFailAsync(new JobFailParams(_workerId, job.Ref, FailureRecord.From(error), retryAt, Time.GetUtcNow()) { Runner = _runner }, CancellationToken.None);
                return Recorded(new KeelTestRun(job.JobId, job.Kind, job.Attempt, KeelTestRunResult.Failed, error, now, retryAt is not null));
            default:
                // Cancelled by the test: the claim goes back uncharged, as at a graceful stop.
                await _storage.ClaimsReleaseAsync(new ClaimsReleaseParams(_workerId, [job.ClaimId], Time.GetUtcNow()) { Reason = new RunEnding(RunOutcomes.Released, "stop", "the test cancelled its drain"), Runner = _runner }, CancellationToken.None);
                cancellationToken.ThrowIfCancellationRequested();
                throw new OperationCanceledException("the job's run was cancelled");
        }
    }

    private RunControl Control(long processId, ClaimedJob job, CancellationToken stop)
        => new(stop, () => "stop", _options.CancellationGrace, ct => _storage.ClaimHeldAsync(new ClaimHeldParams(processId, job.Ref, Time.GetUtcNow()), ct));

    private KeelTestRun Recorded(KeelTestRun run)
    {
        Record(run);
        return run;
    }
}
