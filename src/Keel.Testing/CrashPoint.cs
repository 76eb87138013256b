using Keel.Storage;

namespace Keel.Testing;

/// <summary>Where crash injection kills the worker that claimed a job.</summary>
public enum CrashPoint
{
    /// <summary>Right after the claim: the job never started.</summary>
    BeforePerform,

    /// <summary>
    /// After the job's code ran to its end (returned or threw) but before its result was written: every side effect
    /// happened, and the job will run again — what an idempotent job must survive.
    /// </summary>
    AfterPerform,
}

/// <summary>What crash injection did, and the job as recovery left it.</summary>
/// <param name="JobId">The job whose worker was killed.</param>
/// <param name="Point">Where.</param>
/// <param name="Recovery">What recovering the dead worker's claim did (retried, failed or released).</param>
/// <param name="Job">The job after recovery: back to ready under its <c>OnWorkerLost</c> policy, or failed.</param>
public sealed record CrashResult(long JobId, CrashPoint Point, RecoveryResult Recovery, JobInfo Job);
