namespace Keel;

/// <summary>
/// One recurring task: which job kind to enqueue with which arguments, on which cron schedule. Bound from
/// <c>Keel:Recurring:&lt;key&gt;</c> or added in code with <c>AddRecurring</c>, or at run time through
/// <see cref="IKeelRecurring"/>.
/// </summary>
public sealed class RecurringTaskOptions
{
    /// <summary>The job kind to enqueue (its <see cref="JobAttribute"/> kind or class name); it must be registered.</summary>
    public string Kind { get; set; } = string.Empty;

    /// <summary>The job's arguments as JSON text. Default <c>{}</c>.</summary>
    public string Args { get; set; } = "{}";

    /// <summary>
    /// A cron expression with 5 fields (minute precision) or 6 fields (seconds first), or a macro:
    /// <c>@yearly</c>, <c>@annually</c>, <c>@monthly</c>, <c>@weekly</c>, <c>@daily</c>, <c>@midnight</c>,
    /// <c>@hourly</c>, <c>@every_minute</c>, <c>@every_second</c>. Parsed with Cronos.
    /// </summary>
    public string Schedule { get; set; } = string.Empty;

    /// <summary>The IANA (or Windows) time zone the schedule is read in, e.g. <c>Europe/Paris</c>. Default UTC.</summary>
    public string? TimeZone { get; set; }

    /// <summary>The queue; null means the kind's queue.</summary>
    public string? Queue { get; set; }

    /// <summary>The priority; null means the kind's priority.</summary>
    public int? Priority { get; set; }

    /// <summary>The attempts each enqueued job gets; null means the kind's <see cref="JobOptions.MaxAttempts"/>.</summary>
    public int? MaxAttempts { get; set; }

    /// <summary>What to do with ticks missed while no scheduler ran. Default <see cref="RecurringCatchUp.Skip"/>.</summary>
    public RecurringCatchUp CatchUp { get; set; } = RecurringCatchUp.Skip;

    /// <summary>With <see cref="RecurringCatchUp.All"/>, the most missed ticks enqueued (the most recent ones). Default 10.</summary>
    public int CatchUpLimit { get; set; } = 10;

    /// <summary>A sentence for operators.</summary>
    public string? Description { get; set; }
}

/// <summary>What a scheduler does with the ticks of a task that were missed while no scheduler ran.</summary>
public enum RecurringCatchUp
{
    /// <summary>Nothing: scheduling resumes from now on.</summary>
    Skip,

    /// <summary>Enqueue one job, for the most recent missed tick.</summary>
    Once,

    /// <summary>Enqueue one job per missed tick, up to <see cref="RecurringTaskOptions.CatchUpLimit"/> (the most recent ones).</summary>
    All,
}

/// <summary>The scheduler: enqueues recurring tasks on their ticks.</summary>
public sealed class SchedulerOptions
{
    /// <summary>
    /// Run a scheduler. Null (the default) runs one when any static task is configured in
    /// <see cref="KeelOptions.Recurring"/>; true runs one anyway (for dynamic tasks added through
    /// <see cref="IKeelRecurring"/>); false never runs one in this application.
    /// </summary>
    public bool? Enabled { get; set; }

    /// <summary>The longest a scheduler sleeps between two looks at the task table: how soon dynamic-task changes are picked up. Default 5 s.</summary>
    public TimeSpan PollingInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A tick older than this when the scheduler gets to it counts as missed (the scheduler was down, suspended or cut
    /// off from the database) and follows its task's <see cref="RecurringTaskOptions.CatchUp"/> policy; a younger one
    /// is enqueued normally, so a quick restart loses nothing. Default 1 min; at least <see cref="PollingInterval"/>.
    /// </summary>
    public TimeSpan MisfireThreshold { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Whether a scheduler runs with <paramref name="options"/>: see <see cref="Enabled"/>.</summary>
    /// <param name="options">All of Keel's options.</param>
    /// <returns>True when a scheduler should run.</returns>
    public static bool ShouldRun(KeelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Scheduler.Enabled ?? options.Recurring.Count > 0;
    }
}
