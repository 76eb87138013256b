using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.Options;

namespace Keel.Runtime;

/// <summary>The <see cref="IKeelRecurring"/> over the store.</summary>
internal sealed class KeelRecurring(IKeelStorage storage, JobRegistry registry, IOptions<KeelOptions> options, JobSignal signal, KeelClock clock) : IKeelRecurring
{
    public async Task<IReadOnlyList<RecurringTaskInfo>> ListAsync(CancellationToken cancellationToken = default)
    {
        var now = clock.UtcNow;
        var tasks = await storage.RecurringTasksListAsync(new RecurringTasksListParams(), cancellationToken);
        return [.. tasks.Select(t => t with
        {
            NextRunAt = RecurringSchedule.TryCreate(t.Task.Schedule, t.Task.TimeZone, out var schedule, out _) ? schedule!.Next(now) : null,
        })];
    }

    public async Task AddOrUpdateAsync(string key, RecurringTaskOptions task, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        ArgumentNullException.ThrowIfNull(task);
        var name = $"recurring task '{key}'";
        var errors = RecurringTasks.Validate(name, key, task).ToList();
        if (errors.Count == 0 && RecurringTasks.ValidateKind(name, task.Kind, task.Args, registry, options.Value.JsonSerializerOptions) is { } kindError)
        {
            errors.Add(kindError);
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(task));
        }

        var record = RecurringTasks.ToRecord(key, task, isStatic: false);
        if (!await storage.RecurringTaskUpsertAsync(new RecurringTaskUpsertParams(record, clock.StorageNow), cancellationToken))
        {
            throw new InvalidOperationException($"recurring task '{key}' is static (from configuration or AddRecurring); change it there, or pick another key");
        }
    }

    public Task<bool> RemoveAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        return storage.RecurringTaskDeleteAsync(new RecurringTaskDeleteParams(key), cancellationToken);
    }

    public async Task<long> RunNowAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        var info = (await storage.RecurringTasksListAsync(new RecurringTasksListParams(key), cancellationToken)).FirstOrDefault()
            ?? throw new InvalidOperationException($"there is no recurring task '{key}'");
        var descriptor = registry.FindByKind(info.Task.Kind)
            ?? throw new InvalidOperationException($"recurring task '{key}' enqueues kind '{info.Task.Kind}', which is not registered in this application");
        var job = RecurringTasks.NewJob(info.Task, descriptor, options.Value.JsonSerializerOptions);

        // Recorded as a run at the current time, which no tick shares in practice; on the rare clash, a microsecond later.
        var runAt = clock.UtcNow;
        for (var i = 0; ; i++)
        {
            if (await storage.RecurringEnqueueAsync(new RecurringEnqueueParams(key, runAt, job, clock.StorageNow), cancellationToken) is { } id)
            {
                signal.Notify();
                return id;
            }

            if (i >= 100)
            {
                throw new InvalidOperationException($"recurring task '{key}' could not be recorded as run at {runAt:O}");
            }

            runAt = runAt.AddTicks(10);
        }
    }
}
