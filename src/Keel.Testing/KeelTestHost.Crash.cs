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
            if (point == CrashPoint.AfterPerform)
            {
                // Its code runs to the end; what it returns or throws is lost with the worker.
                _ = await _executor.RunAsync(job, Control(doomed, job, cancellationToken));
            }

            Record(new KeelTestRun(job.JobId, job.Kind, job.Attempt, KeelTestRunResult.Crashed, null, now));
            var cause = new WorkerLostCause("process-exited", $"killed by Keel.Testing crash injection ({point})");
            var recovery = await _storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(doomed, cause, Time.GetUtcNow()), CancellationToken.None)
                ?? throw new InvalidOperationException($"the crashed worker's process row {doomed} could not be recovered");
            var after = await _storage.JobGetAsync(job.JobId, CancellationToken.None)
                ?? throw new InvalidOperationException($"job {job.JobId} is gone after its worker's recovery");
            return new CrashResult(job.JobId, point, recovery, after);
        }
        finally
        {
            _inDrain.Value = false;
            _drainGate.Release();
        }
    }
}
