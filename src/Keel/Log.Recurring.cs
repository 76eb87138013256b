using Microsoft.Extensions.Logging;

namespace Keel;

/// <summary>The scheduler's log messages (event ids 5001–5099, documented in docs/logging.md).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "Recurring task {TaskKey} enqueued job {JobId} for its run at {RunAt:O}")]
    public static partial void RecurringEnqueued(ILogger logger, string taskKey, long jobId, DateTimeOffset runAt);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Warning, Message = "Recurring task {TaskKey} missed ticks while no scheduler ran (last run {LastRunAt:O}); catch-up policy {CatchUp} enqueues {Enqueued} of them")]
    public static partial void RecurringMissed(ILogger logger, string taskKey, DateTimeOffset lastRunAt, RecurringCatchUp catchUp, int enqueued);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Error, Message = "Recurring task {TaskKey} is not scheduled: {Reason}")]
    public static partial void RecurringTaskInvalid(ILogger logger, string taskKey, string reason);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Error, Message = "Scheduler error; retrying in {Delay}")]
    public static partial void SchedulerError(ILogger logger, Exception exception, TimeSpan delay);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Information, Message = "Scheduler synchronised {Count} static recurring tasks; {Removed} no longer configured were removed")]
    public static partial void RecurringSynced(ILogger logger, int count, int removed);
}
