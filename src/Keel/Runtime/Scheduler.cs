using System.Text.Json;
using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>What one scheduler pass did.</summary>
/// <param name="Enqueued">Jobs this scheduler enqueued (runs another scheduler won are not counted).</param>
/// <param name="NextRunAt">The earliest upcoming tick of any task; null when no task has one.</param>
internal sealed record SchedulerPass(int Enqueued, DateTimeOffset? NextRunAt);

/// <summary>
/// Enqueues recurring tasks on their ticks. Each task keeps a cursor, the time up to which its ticks are handled: the
/// last recorded run when the scheduler first sees the task (now for a task that never ran), then the time of each
/// pass. A pass handles the ticks in (cursor, now]; a tick is enqueued through the unique (task, run time) record, so
/// however many schedulers race, each run enqueues exactly one job. Ticks older than the misfire threshold were missed
/// (no scheduler ran) and follow the task's catch-up policy.
/// </summary>
internal sealed class Scheduler
{
    private readonly IKeelStorage _storage;
    private readonly JobRegistry _registry;
    private readonly JobSignal _signal;
    private readonly KeelOptions _options;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly ProcessRegistration _registration;
    private readonly Action? _onPruned;
    private readonly Dictionary<string, TaskState> _tasks = new(StringComparer.Ordinal);
    private bool _synced;

    public Scheduler(IKeelStorage storage, JobRegistry registry, JobSignal signal, KeelOptions options, ILogger logger, KeelClock clock, ProcessIdentityInfo? identity = null, Action? onPruned = null)
    {
        _storage = storage;
        _registry = registry;
        _signal = signal;
        _options = options;
        _logger = logger;
        _clock = clock;
        _onPruned = onPruned;
        _registration = new ProcessRegistration(storage, options, logger, clock, identity ?? ProcessIdentityInfo.New("Scheduler"), () => JsonSerializer.Serialize(new { staticTasks = options.Recurring.Keys.Order(StringComparer.Ordinal), pollingIntervalMs = options.Scheduler.PollingInterval.TotalMilliseconds }));
    }

    /// <summary>The current process row id; 0 before registration.</summary>
    public long ProcessId => _registration.Id;

    public Task RunAsync(CancellationToken stoppingToken)
        => _registration.RunAsync(LoopAsync, e => Log.SchedulerError(_logger, e, TimeSpan.Zero), stoppingToken);

    /// <summary>Makes the stored static tasks match the configured ones (a task removed from configuration is removed).</summary>
    public async Task SyncStaticTasksAsync(CancellationToken cancellationToken)
    {
        var tasks = RecurringTasks.FromOptions(_options);
        var removed = await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "synchronise recurring tasks",
            ct => _storage.RecurringTasksSyncAsync(new RecurringTasksSyncParams(tasks, _clock.StorageNow), ct),
            cancellationToken);
        Log.RecurringSynced(_logger, tasks.Count, removed);
    }

    private Task LoopAsync(CancellationToken stoppingToken)
        => Poller.RunAsync(PassAsync, _registration.Outage, "enqueue recurring tasks", _clock.TimeProvider, null, stoppingToken);

    private async Task<TimeSpan> PassAsync(CancellationToken stoppingToken)
    {
        if (await _registration.HandleLostAsync(_onPruned, stoppingToken))
        {
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }

        if (!_synced)
        {
            await SyncStaticTasksAsync(stoppingToken);
            _synced = true;
        }

        var pass = await RunOnceAsync(_clock.UtcNow, stoppingToken);
        var delay = _options.Scheduler.PollingInterval;
        if (pass.NextRunAt is { } next)
        {
            // Wake just after the tick: a pass that comes early finds nothing due and sleeps again.
            var untilNext = next - _clock.UtcNow + TimeSpan.FromMilliseconds(1);
            delay = untilNext < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : untilNext < delay ? untilNext : delay;
        }

        return delay;
    }

    /// <summary>
    /// One pass at <paramref name="now"/>: reloads the task table (picking up dynamic changes), then enqueues every
    /// due tick of every task. Not safe to call concurrently on one instance; several instances may race freely.
    /// </summary>
    public async Task<SchedulerPass> RunOnceAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var stored = await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "list recurring tasks",
            ct => _storage.RecurringTasksListAsync(new RecurringTasksListParams(), ct),
            cancellationToken);

        var present = stored.Select(t => t.Task.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var key in _tasks.Keys.Where(k => !present.Contains(k)).ToList())
        {
            _tasks.Remove(key);
        }

        var enqueued = 0;
        DateTimeOffset? earliest = null;
        foreach (var info in stored)
        {
            var state = Refresh(info, now);
            if (state.Schedule is null)
            {
                continue;
            }

            enqueued += await RunTaskAsync(state, now, cancellationToken);
            if (state.Schedule.Next(state.Cursor) is { } next && (earliest is null || next < earliest))
            {
                earliest = next;
            }
        }

        if (enqueued > 0)
        {
            _signal.Notify();
        }

        return new SchedulerPass(enqueued, earliest);
    }

    private TaskState Refresh(RecurringTaskInfo info, DateTimeOffset now)
    {
        var task = info.Task;
        if (_tasks.TryGetValue(task.Key, out var state) && state.Task == task)
        {
            return state;
        }

        // New to this scheduler: resume from the last recorded run. Changed while running: keep the cursor.
        var cursor = state?.Cursor ?? info.LastRunAt ?? now;
        var fresh = new TaskState(task, cursor);
        if (!RecurringSchedule.TryCreate(task.Schedule, task.TimeZone, out var schedule, out var error))
        {
            Log.RecurringTaskInvalid(_logger, task.Key, error!);
        }
        else if (_registry.FindByKind(task.Kind) is not { } descriptor)
        {
            Log.RecurringTaskInvalid(_logger, task.Key, $"job kind '{task.Kind}' is not registered in this application");
        }
        else
        {
            fresh.Schedule = schedule;
            fresh.Job = RecurringTasks.NewJob(task, descriptor, _options.JsonSerializerOptions);
        }

        _tasks[task.Key] = fresh;
        return fresh;
    }

    private async Task<int> RunTaskAsync(TaskState state, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var task = state.Task;
        var misfireBefore = now - _options.Scheduler.MisfireThreshold;
        var wanted = task.CatchUp switch
        {
            RecurringCatchUp.Once => 1,
            RecurringCatchUp.All => Math.Max(1, task.CatchUpLimit),
            _ => 0,
        };

        var onTime = new List<DateTimeOffset>();
        var missed = new List<DateTimeOffset>();
        var anyMissed = false;
        foreach (var tick in state.Schedule!.Descending(state.Cursor, now))
        {
            if (tick >= misfireBefore)
            {
                onTime.Add(tick);
                continue;
            }

            anyMissed = true;
            if (missed.Count >= wanted)
            {
                break; // Older ticks than the policy wants: never enumerate a long outage tick by tick.
            }

            missed.Add(tick);
        }

        if (task.CatchUp == RecurringCatchUp.Once && onTime.Count > 0)
        {
            missed.Clear(); // "Once": the run due now already covers the outage.
        }

        if (anyMissed)
        {
            Log.RecurringMissed(_logger, task.Key, state.Cursor, task.CatchUp, missed.Count);
        }

        var enqueued = 0;
        foreach (var runAt in missed.Concat(onTime).Order())
        {
            var jobId = await StorageRetry.RunAsync(
                _storage,
                _registration.Outage,
                "enqueue recurring task",
                ct => _storage.RecurringEnqueueAsync(new RecurringEnqueueParams(task.Key, runAt, state.Job!, _clock.StorageNow), ct),
                cancellationToken);
            if (jobId is { } id)
            {
                enqueued++;
                Log.RecurringEnqueued(_logger, task.Key, id, runAt);
                KeelMetrics.Enqueued.Add(1, KeelMetrics.QueueTag(state.Job!.Queue), KeelMetrics.KindTag(state.Job.Kind), new("keel.source", "recurring"));
            }

            state.Cursor = runAt;
        }

        if (now > state.Cursor)
        {
            state.Cursor = now;
        }

        return enqueued;
    }

    private sealed class TaskState(RecurringTask task, DateTimeOffset cursor)
    {
        public RecurringTask Task { get; } = task;

        /// <summary>Ticks up to and including this time are handled.</summary>
        public DateTimeOffset Cursor { get; set; } = cursor;

        public RecurringSchedule? Schedule { get; set; }

        public NewJob? Job { get; set; }
    }
}
