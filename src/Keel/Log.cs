using Microsoft.Extensions.Logging;

namespace Keel;

/// <summary>Every log message Keel writes, with stable event ids (documented in docs/logging.md).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Worker {ProcessName} (process {ProcessId}) started on queues {Queues} with {Threads} threads")]
    public static partial void WorkerStarted(ILogger logger, string processName, long processId, string queues, int threads);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Worker {ProcessName} (process {ProcessId}) stopped; {Released} claims released back to ready")]
    public static partial void WorkerStopped(ILogger logger, string processName, long processId, int released);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Job {JobId} ({Kind}) attempt {Attempt} failed; retrying at {RetryAt:O}")]
    public static partial void JobRetrying(ILogger logger, Exception exception, long jobId, string kind, int attempt, DateTimeOffset retryAt);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Job {JobId} ({Kind}) failed for good on attempt {Attempt}")]
    public static partial void JobFailed(ILogger logger, Exception exception, long jobId, string kind, int attempt);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Late result for job {JobId} rejected: claim {ClaimId} of process {ProcessId} is no longer held (it was recovered)")]
    public static partial void LateResultRejected(ILogger logger, long jobId, long claimId, long processId);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Shutdown timeout of {Timeout} exceeded with {Running} jobs still running; cancelling them")]
    public static partial void ShutdownTimeoutExceeded(ILogger logger, TimeSpan timeout, int running);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Error, Message = "Worker loop error in {ProcessName}; retrying in {Delay}")]
    public static partial void WorkerLoopError(ILogger logger, Exception exception, string processName, TimeSpan delay);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Process {ProcessName} (process {ProcessId}) is no longer registered (pruned); cancelling its {Running} running jobs")]
    public static partial void ProcessPrunedWhileRunning(ILogger logger, string processName, long processId, int running);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Debug, Message = "Job {JobId} ({Kind}) was interrupted by shutdown; its claim is released")]
    public static partial void JobInterrupted(ILogger logger, long jobId, string kind);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Debug, Message = "Dispatched {Count} due scheduled jobs")]
    public static partial void ScheduledDispatched(ILogger logger, int count);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error, Message = "Dispatcher error; retrying in {Delay}")]
    public static partial void DispatcherError(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Process {ProcessName} registered as {ProcessId} ({Kind}, pid {Pid} on {Hostname})")]
    public static partial void ProcessRegistered(ILogger logger, string processName, long processId, string kind, int pid, string hostname);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Schema migrated on {Engine}: version {Version}")]
    public static partial void SchemaMigrated(ILogger logger, string engine, int version);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Pruned process {ProcessName} ({ProcessId}): {Cause}; {Retried} jobs back to ready, {Failed} failed. {Description}")]
    public static partial void ProcessPruned(ILogger logger, string processName, long processId, string cause, int retried, int failed, string description);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Error, Message = "Maintenance error; next pass in {Delay}")]
    public static partial void MaintenanceError(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Started {Role} as {ProcessName} (pid {Pid})")]
    public static partial void ChildStarted(ILogger logger, string role, string processName, int pid);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "{Role} {ProcessName} (pid {Pid}) {How}")]
    public static partial void ChildExited(ILogger logger, string role, string processName, int pid, string how);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Killing {Role} {ProcessName} (pid {Pid}): {Reason}")]
    public static partial void ChildKilled(ILogger logger, string role, string processName, int pid, string reason);

    [LoggerMessage(EventId = 4006, Level = LogLevel.Information, Message = "{Role} {ProcessName} (pid {Pid}) stopped cleanly")]
    public static partial void ChildStopped(ILogger logger, string role, string processName, int pid);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Error, Message = "Supervisor error")]
    public static partial void SupervisorError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Information, Message = "Supervisor stopping: sending {Signal} to {Children} children and waiting for them")]
    public static partial void SupervisorStopping(ILogger logger, string signal, int children);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Information, Message = "Retention: deleted {Count} finished or discarded jobs older than {Keep}")]
    public static partial void FinishedJobsCleared(ILogger logger, long count, TimeSpan keep);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Debug, Message = "Job {JobId} ({Kind}) finished on attempt {Attempt}")]
    public static partial void JobFinished(ILogger logger, long jobId, string kind, int attempt);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "Worker {ProcessName} (process {ProcessId}) gave back jobs claimed ahead that found no free thread within {Wait}: runs have turned long, so it claims only for its free threads until its next runs end short")]
    public static partial void ClaimAheadStopped(ILogger logger, string processName, long processId, TimeSpan wait);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Process {ProcessName} ({ProcessId}) deregistered; {Released} claims released back to ready")]
    public static partial void ProcessDeregistered(ILogger logger, string processName, long processId, int released);

    [LoggerMessage(EventId = 3009, Level = LogLevel.Warning, Message = "Claims recovered by an operator: {Released} released, {Retried} back to ready as an attempt, {Failed} failed. {Description}")]
    public static partial void ClaimsRecoveredByOperator(ILogger logger, int released, int retried, int failed, string description);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "{Count} jobs discarded by an operator")]
    public static partial void JobsDiscardedByOperator(ILogger logger, long count);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "Telemetry snapshot refresh failed; the gauges keep the previous values until the next refresh in {Delay}")]
    public static partial void TelemetrySnapshotFailed(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "Health endpoints /healthz/live and /healthz/ready listening on {Prefix}")]
    public static partial void HealthEndpointListening(ILogger logger, string prefix);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Error, Message = "Health endpoint error on {Prefix}")]
    public static partial void HealthEndpointError(ILogger logger, Exception exception, string prefix);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Debug, Message = "Concurrency maintenance promoted {Count} blocked jobs")]
    public static partial void BlockedPromoted(ILogger logger, int count);
}
