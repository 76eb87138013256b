using Keel.Storage;

namespace Keel;

/// <summary>
/// Recurring tasks at run time: list them with their last and next runs, add or remove dynamic tasks (a running
/// scheduler picks changes up within <see cref="SchedulerOptions.PollingInterval"/>), and run a task now.
/// Static tasks (from configuration or <c>AddRecurring</c>) are changed by changing the configuration.
/// </summary>
public interface IKeelRecurring
{
    /// <summary>Every recurring task, static and dynamic, by key, with its last run and its next tick after now.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The tasks.</returns>
    Task<IReadOnlyList<RecurringTaskInfo>> ListAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds a dynamic task, or replaces the dynamic task with the same key.</summary>
    /// <param name="key">The task key.</param>
    /// <param name="task">What to enqueue and when; validated like configuration.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task completing once stored.</returns>
    /// <exception cref="ArgumentException">The task is invalid (bad cron expression or time zone, unknown kind…); the message says why.</exception>
    /// <exception cref="InvalidOperationException">A static task has this key.</exception>
    Task AddOrUpdateAsync(string key, RecurringTaskOptions task, CancellationToken cancellationToken = default);

    /// <summary>Removes a dynamic task; its run history stays.</summary>
    /// <param name="key">The task key.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>False when there is no dynamic task with this key.</returns>
    Task<bool> RemoveAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Enqueues one job of a task now, whatever its schedule; recorded as a run at the current time.</summary>
    /// <param name="key">The task key.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The new job's id.</returns>
    /// <exception cref="InvalidOperationException">There is no such task, or its kind is not registered here.</exception>
    Task<long> RunNowAsync(string key, CancellationToken cancellationToken = default);
}
