namespace Keel.Storage;

/// <summary>A recurring task as stored in <c>keel_recurring_tasks</c>.</summary>
/// <param name="Key">The unique task key.</param>
/// <param name="Kind">The job kind to enqueue.</param>
/// <param name="Args">The job's arguments as JSON text.</param>
/// <param name="Schedule">The cron expression or macro.</param>
/// <param name="TimeZone">The time zone id the schedule is read in; null means UTC.</param>
/// <param name="Queue">The queue; null means the kind's.</param>
/// <param name="Priority">The priority; null means the kind's.</param>
/// <param name="MaxAttempts">The attempts per job; null means the kind's.</param>
/// <param name="CatchUp">What to do with missed ticks.</param>
/// <param name="CatchUpLimit">The most missed ticks enqueued under <see cref="RecurringCatchUp.All"/>.</param>
/// <param name="Static">True for a task from configuration or code (synchronised at start); false for a dynamic one.</param>
/// <param name="Description">A sentence for operators.</param>
public sealed record RecurringTask(
    string Key,
    string Kind,
    string Args,
    string Schedule,
    string? TimeZone,
    string? Queue,
    int? Priority,
    int? MaxAttempts,
    RecurringCatchUp CatchUp,
    int CatchUpLimit,
    bool Static,
    string? Description);

/// <summary>A recurring task with what has happened to it.</summary>
/// <param name="Task">The task.</param>
/// <param name="LastRunAt">The newest recorded run time (a tick, or the time of a "run now"); null when it never ran.</param>
/// <param name="LastJobId">The job enqueued for that run, if any.</param>
/// <param name="NextRunAt">The next tick after now; null from storage (which does not parse schedules) or when there is none.</param>
public sealed record RecurringTaskInfo(RecurringTask Task, DateTimeOffset? LastRunAt, long? LastJobId, DateTimeOffset? NextRunAt = null);

/// <summary>Parameters of <see cref="IKeelStorage.RecurringTasksSyncAsync"/>.</summary>
/// <param name="Tasks">Every static task; each is upserted (as static) and every other static task is deleted.</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record RecurringTasksSyncParams(IReadOnlyList<RecurringTask> Tasks, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.RecurringTaskUpsertAsync"/>.</summary>
/// <param name="Task">The dynamic task (its <see cref="RecurringTask.Static"/> is ignored: stored as dynamic).</param>
/// <param name="Now">The time; null means the database clock.</param>
public sealed record RecurringTaskUpsertParams(RecurringTask Task, DateTimeOffset? Now);

/// <summary>Parameters of <see cref="IKeelStorage.RecurringTaskDeleteAsync"/>.</summary>
/// <param name="Key">The dynamic task's key.</param>
public sealed record RecurringTaskDeleteParams(string Key);

/// <summary>Parameters of <see cref="IKeelStorage.RecurringTasksListAsync"/>.</summary>
/// <param name="Key">Only this task, when set.</param>
public sealed record RecurringTasksListParams(string? Key = null);

/// <summary>Parameters of <see cref="IKeelStorage.RecurringEnqueueAsync"/>.</summary>
/// <param name="TaskKey">The task.</param>
/// <param name="RunAt">The tick (or, for "run now", the current time); unique per task.</param>
/// <param name="Job">The job to insert when the tick was not yet recorded.</param>
/// <param name="Now">The insert time (ready versus scheduled, created_at); null means the database clock.</param>
public sealed record RecurringEnqueueParams(string TaskKey, DateTimeOffset RunAt, NewJob Job, DateTimeOffset? Now);

/// <summary>
/// How a store writes a <see cref="RecurringCatchUp"/> policy in <c>keel_recurring_tasks.catch_up</c>: <c>skip</c>,
/// <c>once</c> or <c>all</c>, the same text in every engine.
/// </summary>
public static class RecurringCatchUpText
{
    /// <summary>The stored text of a policy.</summary>
    /// <param name="value">The policy.</param>
    /// <returns><c>skip</c>, <c>once</c> or <c>all</c>.</returns>
    public static string ToText(RecurringCatchUp value) => value switch
    {
        RecurringCatchUp.Once => "once",
        RecurringCatchUp.All => "all",
        _ => "skip",
    };

    /// <summary>Reads what <see cref="ToText"/> wrote; anything else is <see cref="RecurringCatchUp.Skip"/>.</summary>
    /// <param name="text">The stored text.</param>
    /// <returns>The policy.</returns>
    public static RecurringCatchUp Parse(string text) => text switch
    {
        "once" => RecurringCatchUp.Once,
        "all" => RecurringCatchUp.All,
        _ => RecurringCatchUp.Skip,
    };
}
