using Keel.Storage;

namespace Keel.Testing;

public sealed partial class KeelTestHost
{
    /// <summary>
    /// Crash injection: a worker of its own claims the next ready job, runs it up to <paramref name="point"/> and dies
    /// there — in process, as if its OS process had been killed: its claim is recovered the way Keel recovers a dead
    /// worker's claims, charging the job under its <c>OnWorkerLost</c> policy (back to ready as a counted attempt, or
    /// failed with a <c>WorkerLostException</c> once the policy or its losses say so). Then
    /// <see cref="RunUntilIdleAsync"/> runs it again, so a test can check the job's side effects happened once.
    /// </summary>
    /// <param name="point">Where the worker dies.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job and what recovery did with it.</returns>
    /// <exception cref="InvalidOperationException">No job is ready.</exception>
    public async Task<CrashResult> CrashWorkerAsync(CrashPoint point, CancellationToken cancellationToken = default)
    {
        if (!Enum.IsDefined(point))
        {
            throw new ArgumentOutOfRangeException(nameof(point), point, "not a CrashPoint");
        }

        await _drainGate.WaitAsync(cancellationToken);
        // An inline enqueue by the job it runs must not wait for this call to end.
        _inDrain.Value = true;
        try
        {
            var now = Time.GetUtcNow();
            await MakeDueReadyAsync(now, cancellationToken);
            var doomed = await RegisterAsync("crash", cancellationToken);
            var claimed = await ClaimOneAsync(doomed, now, cancellationToken);
            if (claimed.Count == 0)
            {
                await _storage.ProcessDeregisterAsync(new ProcessDeregisterParams(doomed, now), CancellationToken.None);
                throw new InvalidOperationException("CrashWorkerAsync found no ready job to run: enqueue one first (a scheduled job becomes ready when the fake clock reaches its time)");
            }

            var job = claimed[0];
            _killRequested = false;
            if (point == CrashPoint.AfterPerform)
            {
                // Its code runs to the end (or to a KillWorker call); what it returns or throws is lost with the worker.
                _ = await _executor.RunAsync(job, Control(doomed, job, cancellationToken));
            }

            var cause = _killRequested ? "KillWorker called by the job" : point.ToString();
            _killRequested = false;
            var (recovery, after, _) = await RecoverCrashedAsync(doomed, job, cause, now);
            return new CrashResult(job.JobId, point, recovery, after);
        }
        finally
        {
            _inDrain.Value = false;
            _drainGate.Release();
        }
    }

    /// <summary>
    /// Kills the worker running the current job, right here: call it from a fake that the job uses — a payment gateway
    /// once it charged, say — to crash at exactly that point of the job. It throws <see cref="KeelWorkerKilledException"/>
    /// so that none of the job's code after the call runs, and the worker dies as in <see cref="CrashWorkerAsync"/>: the
    /// claim is recovered under the job's <c>OnWorkerLost</c> policy, and the drain goes on (running the job again when
    /// it went back to ready). Works in <see cref="RunUntilIdleAsync"/>, <see cref="CrashWorkerAsync"/> and inline mode.
    /// A job that catches every exception swallows the throw; its worker still dies, when the job returns.
    /// </summary>
    /// <exception cref="KeelWorkerKilledException">Always: it unwinds the job.</exception>
    /// <exception cref="InvalidOperationException">Called outside the code of a job this host runs.</exception>
    public void KillWorker()
    {
        if (!_inDrain.Value)
        {
            throw new InvalidOperationException("KillWorker is called from the code of a job the test host runs (through RunUntilIdleAsync, CrashWorkerAsync or an inline enqueue), and no job runs here");
        }

        _killRequested = true;
        throw new KeelWorkerKilledException();
    }

    /// <summary>What Keel does when a worker process is found dead: its claims recovered, charged (DESIGN §2.5).</summary>
    private async Task<(RecoveryResult Recovery, JobInfo Job, KeelTestRun Run)> RecoverCrashedAsync(long processId, ClaimedJob job, string cause, DateTimeOffset at)
    {
        var run = new KeelTestRun(job.JobId, job.Kind, job.Attempt, KeelTestRunResult.Crashed, null, at);
        Record(run);
        var lost = new WorkerLostCause("process-exited", $"killed by Keel.Testing crash injection ({cause})");
        var recovery = await _storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(processId, lost, Time.GetUtcNow()), CancellationToken.None)
            ?? throw new InvalidOperationException($"the crashed worker's process row {processId} could not be recovered");
        var after = await _storage.JobGetAsync(job.JobId, CancellationToken.None)
            ?? throw new InvalidOperationException($"job {job.JobId} is gone after its worker's recovery");
        return (recovery, after, run);
    }
}
