using Microsoft.Extensions.Logging;

namespace Keel;

/// <summary>Leases, fencing, reconciling, outages, blame and stops (event ids 7001–7099).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "{Component}: database unreachable in {Operation} ({Error}); retrying in {RetryIn} and logging again when it is back")]
    public static partial void DatabaseUnreachable(ILogger logger, Exception exception, string component, string operation, string error, TimeSpan retryIn);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Debug, Message = "{Component}: still unreachable in {Operation}; retrying in {RetryIn}")]
    public static partial void DatabaseStillUnreachable(ILogger logger, Exception exception, string component, string operation, TimeSpan retryIn);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Information, Message = "{Component}: database reachable again after {Elapsed}")]
    public static partial void DatabaseReconnected(ILogger logger, string component, TimeSpan elapsed);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Warning, Message = "Process {ProcessName} ({ProcessId}) could not renew its lease for {Silent} ({Remaining} of it left): fencing itself — cancelling its {Running} jobs and claiming nothing until it renews")]
    public static partial void LeaseFenced(ILogger logger, string processName, long processId, TimeSpan silent, TimeSpan remaining, int running);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "Process {ProcessName} ({ProcessId}) renewed its lease after {Silent}; claiming again")]
    public static partial void LeaseRenewed(ILogger logger, string processName, long processId, TimeSpan silent);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Critical, Message = "Process {ProcessName} ({ProcessId}) lost its lease with {Running} jobs still running despite cancellation: exiting so that none of them runs once others may take them over")]
    public static partial void LeaseExpiredExiting(ILogger logger, string processName, long processId, int running);

    [LoggerMessage(EventId = 7007, Level = LogLevel.Warning, Message = "Worker {ProcessName} ({ProcessId}) holds {Count} claims it does not run (a commit whose reply was lost, or a run fenced while the database was away): released back to ready uncharged: {ClaimIds}")]
    public static partial void ClaimsReconciled(ILogger logger, string processName, long processId, int count, string claimIds);

    [LoggerMessage(EventId = 7008, Level = LogLevel.Warning, Message = "Job {JobId} ({Kind}) did not stop within {Grace} of being cancelled ({Reason})")]
    public static partial void JobIgnoresCancellation(ILogger logger, long jobId, string kind, TimeSpan grace, string reason);

    [LoggerMessage(EventId = 7009, Level = LogLevel.Error, Message = "Job {JobId} ({Kind}) abandoned: it ignored its cancellation ({Reason}); its slot is taken back and the worker goes on. Its code may still be running")]
    public static partial void JobAbandoned(ILogger logger, long jobId, string kind, string reason);

    [LoggerMessage(EventId = 7010, Level = LogLevel.Critical, Message = "Worker {ProcessName} ({ProcessId}) exits to be replaced: job {JobId} ({Kind}) did not stop when cancelled ({Reason}); its {Others} other jobs are released uncharged by the supervisor")]
    public static partial void WorkerReplacedForJob(ILogger logger, string processName, long processId, long jobId, string kind, string reason, int others);

    [LoggerMessage(EventId = 7011, Level = LogLevel.Information, Message = "Job {JobId} ({Kind}) is a suspect (it shared a process that died): running it alone once the {Running} jobs beside it finish")]
    public static partial void SuspectIsolating(ILogger logger, long jobId, string kind, int running);

    [LoggerMessage(EventId = 7013, Level = LogLevel.Information, Message = "Stopping {ProcessName} ({ProcessId}): waiting up to {Timeout} for {Running} jobs")]
    public static partial void WorkerStopping(ILogger logger, string processName, long processId, TimeSpan timeout, int running);

    [LoggerMessage(EventId = 7014, Level = LogLevel.Warning, Message = "Restarting {Role} in {Pause} ({Failures} quick exits in a row){CrashLoop}")]
    public static partial void ChildRestartPaused(ILogger logger, string role, TimeSpan pause, int failures, string crashLoop);

    [LoggerMessage(EventId = 7016, Level = LogLevel.Warning, Message = "Keel: {Message}")]
    public static partial void StartupWarning(ILogger logger, string message);

    [LoggerMessage(EventId = 7017, Level = LogLevel.Warning, Message = "Job {JobId} ({Kind}) reached its timeout of {Timeout}: its cancellation token fired")]
    public static partial void JobTimedOut(ILogger logger, long jobId, string kind, TimeSpan timeout);

    [LoggerMessage(EventId = 7018, Level = LogLevel.Warning, Message = "A hand-off notification could not be read or passed to its worker; the offer it took is settled by the worker's next check")]
    public static partial void HandOffUnreadable(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 7019, Level = LogLevel.Debug, Message = "Worker {ProcessName} ({ProcessId}): job {JobId} handed over through offer {OfferId} was not started: {Reason}")]
    public static partial void HandOffNotStarted(ILogger logger, string processName, long processId, long jobId, long offerId, string reason);
}
