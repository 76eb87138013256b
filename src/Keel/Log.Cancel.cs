using Microsoft.Extensions.Logging;

namespace Keel;

/// <summary>Running jobs: cancels requested, delivered, written and escalated (event ids 8001–8099).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 8001, Level = LogLevel.Information, Message = "Cancel of job {JobId} requested; process {ProcessId} runs it and is told within a second: {Reason}")]
    public static partial void JobCancelRequested(ILogger logger, long jobId, long processId, string reason);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Information, Message = "Job {JobId} cancelled before it started (discarded): {Reason}")]
    public static partial void JobCancelledBeforeStart(ILogger logger, long jobId, string reason);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Warning, Message = "Job {JobId} was cancelled (discarded), but the history row saying so could not be written")]
    public static partial void JobCancelHistoryLost(ILogger logger, Exception exception, long jobId);

    [LoggerMessage(EventId = 8004, Level = LogLevel.Information, Message = "Job {JobId} ({Kind}): cancellation token fired on a cancel request: {Reason}")]
    public static partial void JobCancelDelivered(ILogger logger, long jobId, string kind, string reason);

    [LoggerMessage(EventId = 8005, Level = LogLevel.Information, Message = "Job {JobId} ({Kind}) cancelled ({Outcome}): discarded, not retried")]
    public static partial void JobCancelled(ILogger logger, long jobId, string kind, string outcome);

    [LoggerMessage(EventId = 8006, Level = LogLevel.Warning, Message = "Worker {WorkerName} ({ProcessId}) exits to be replaced: cancelled job {JobId} ({Kind}) did not stop within its grace; its {Others} other jobs go back uncharged")]
    public static partial void WorkerReplacedForCancel(ILogger logger, string workerName, long processId, long jobId, string kind, int others);
}
