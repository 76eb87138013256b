namespace Keel.Testing;

/// <summary>How a run of a job made by the test host ended.</summary>
public enum KeelTestRunResult
{
    /// <summary>It returned; the job is finished.</summary>
    Succeeded,

    /// <summary>It threw or timed out; a retry was scheduled or the job failed for good (see <see cref="KeelTestRun.Retrying"/>).</summary>
    Failed,

    /// <summary>It ran (or was about to) when crash injection killed its worker; its result was never written.</summary>
    Crashed,
}

/// <summary>One run of a job made by a <see cref="KeelTestHost"/>, in the order they happened.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Kind">Its kind.</param>
/// <param name="Attempt">Which attempt this was (1 for the first).</param>
/// <param name="Result">How it ended.</param>
/// <param name="Error">What it threw, when it failed.</param>
/// <param name="At">The fake clock's time when it ran.</param>
/// <param name="Retrying">For a failure: whether another attempt was scheduled.</param>
public sealed record KeelTestRun(long JobId, string Kind, int Attempt, KeelTestRunResult Result, Exception? Error, DateTimeOffset At, bool Retrying = false);

/// <summary>What one <see cref="KeelTestHost.RunUntilIdleAsync"/> did.</summary>
/// <param name="Runs">The runs it made, in order.</param>
/// <param name="ClockAt">The fake clock's time when it ended.</param>
public sealed record DrainResult(IReadOnlyList<KeelTestRun> Runs, DateTimeOffset ClockAt)
{
    /// <summary>Runs that succeeded.</summary>
    public int Succeeded => Runs.Count(r => r.Result == KeelTestRunResult.Succeeded);

    /// <summary>Runs that failed (each failed attempt counts).</summary>
    public int Failed => Runs.Count(r => r.Result == KeelTestRunResult.Failed);
}

/// <summary>Thrown by the test host's assertions; the message says what was expected and what the database holds.</summary>
public sealed class KeelAssertionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeelAssertionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was expected and what was found.</param>
    public KeelAssertionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was expected and what was found.</param>
    /// <param name="innerException">The cause.</param>
    public KeelAssertionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Thrown by <see cref="KeelTestHost.KillWorker"/> to unwind the job whose worker it kills; the test host treats the
/// run as a crash, not a failure. Let it pass: a job that catches it only delays its worker's death to its return.
/// </summary>
public sealed class KeelWorkerKilledException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeelWorkerKilledException()
        : base("the test host killed this job's worker (KeelTestHost.KillWorker)")
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public KeelWorkerKilledException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public KeelWorkerKilledException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
