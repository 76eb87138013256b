using System.Text.Json;
using Keel.Registry;
using Keel.Storage;

namespace Keel.Runtime;

/// <summary>Recurring tasks: from options to stored records, validation, and the job a run enqueues.</summary>
internal static class RecurringTasks
{
    /// <summary>The static tasks configured in <paramref name="options"/>, by key.</summary>
    public static IReadOnlyList<RecurringTask> FromOptions(KeelOptions options)
        => [.. options.Recurring.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => ToRecord(e.Key, e.Value, isStatic: true))];

    public static RecurringTask ToRecord(string key, RecurringTaskOptions task, bool isStatic) => new(
        key,
        task.Kind.Trim(),
        string.IsNullOrWhiteSpace(task.Args) ? "{}" : task.Args,
        task.Schedule.Trim(),
        string.IsNullOrWhiteSpace(task.TimeZone) ? null : task.TimeZone.Trim(),
        string.IsNullOrWhiteSpace(task.Queue) ? null : task.Queue,
        task.Priority,
        task.MaxAttempts,
        task.CatchUp,
        task.CatchUpLimit,
        isStatic,
        task.Description);

    /// <summary>Checks what can be checked without the job registry; each message starts with <paramref name="name"/>.</summary>
    public static IEnumerable<string> Validate(string name, string key, RecurringTaskOptions? task)
    {
        if (string.IsNullOrWhiteSpace(key))
        {
            yield return $"{name}: a recurring task key is empty";
        }

        if (task is null)
        {
            yield return $"{name} is empty";
            yield break;
        }

        if (string.IsNullOrWhiteSpace(task.Kind))
        {
            yield return $"{name}:Kind is empty; name the job kind to enqueue";
        }

        if (!RecurringSchedule.TryParseCron(task.Schedule, out _, out var cronError))
        {
            yield return $"{name}:Schedule '{task.Schedule}' is not a valid cron expression: {cronError}";
        }

        if (!RecurringSchedule.TryFindZone(task.TimeZone, out _, out var zoneError))
        {
            yield return $"{name}:TimeZone '{task.TimeZone}' is not a known time zone (use an IANA id such as Europe/Paris): {zoneError}";
        }

        string? jsonError = null;
        try
        {
            using var _ = JsonDocument.Parse(string.IsNullOrWhiteSpace(task.Args) ? "{}" : task.Args);
        }
        catch (JsonException e)
        {
            jsonError = e.Message;
        }

        if (jsonError is not null)
        {
            yield return $"{name}:Args is not valid JSON: {jsonError}";
        }

        if (task.Queue is { } queue && (queue.Length == 0 || queue.Contains('*', StringComparison.Ordinal)))
        {
            yield return $"{name}:Queue '{queue}' is invalid; a queue name is non-empty and has no '*'";
        }

        if (task.MaxAttempts is < 1)
        {
            yield return $"{name}:MaxAttempts must be at least 1 (was {task.MaxAttempts})";
        }

        if (task.CatchUpLimit is < 1 or > 10_000)
        {
            yield return $"{name}:CatchUpLimit must be between 1 and 10000 (was {task.CatchUpLimit})";
        }

        if (!Enum.IsDefined(task.CatchUp))
        {
            yield return $"{name}:CatchUp must be Skip, Once or All (was {task.CatchUp})";
        }
    }

    /// <summary>Checks that the task's kind is registered and its arguments deserialize to the kind's arguments type.</summary>
    public static string? ValidateKind(string name, string kind, string args, JobRegistry registry, JsonSerializerOptions json)
    {
        var descriptor = registry.FindByKind(kind.Trim());
        if (descriptor is null)
        {
            var known = string.Join(", ", registry.All.Select(d => d.Kind).Order(StringComparer.Ordinal));
            return $"{name}:Kind '{kind}' is not a registered job kind; register its class with AddJob<T>() (registered kinds: {(known.Length == 0 ? "none" : known)})";
        }

        try
        {
            JsonSerializer.Deserialize(string.IsNullOrWhiteSpace(args) ? "{}" : args, descriptor.ArgsType, json);
            return null;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException)
        {
            return $"{name}:Args do not deserialize to {descriptor.ArgsType.FullName}, the arguments of kind '{kind}': {e.Message}";
        }
    }

    /// <summary>
    /// The job one run of <paramref name="task"/> enqueues: the task's queue, priority and attempts, else the kind's;
    /// and the kind's concurrency limit, keyed from the task's arguments like any enqueue.
    /// </summary>
    public static NewJob NewJob(RecurringTask task, JobDescriptor? descriptor, JsonSerializerOptions json)
    {
        var kindOptions = descriptor?.Options ?? new JobOptions();
        var maxWorkerLosses = kindOptions.OnWorkerLost == WorkerLostPolicy.Fail ? 0 : kindOptions.MaxWorkerLosses;
        var job = new NewJob(
            task.Kind,
            task.Queue ?? kindOptions.Queue,
            task.Args,
            task.Priority ?? kindOptions.Priority,
            task.MaxAttempts ?? kindOptions.MaxAttempts,
            ScheduledAt: null,
            maxWorkerLosses);
        if (descriptor?.Options.Concurrency is not { } limit)
        {
            return job;
        }

        var args = JsonSerializer.Deserialize(string.IsNullOrWhiteSpace(task.Args) ? "{}" : task.Args, descriptor.ArgsType, json);
        return KeelClient.WithConcurrency(job, task.Kind, limit, args);
    }
}

/// <summary>Checks that every configured recurring task names a registered kind whose arguments fit; start-up fails otherwise.</summary>
internal sealed class RecurringKindsValidator(JobRegistry registry) : Microsoft.Extensions.Options.IValidateOptions<KeelOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, KeelOptions options)
    {
        var errors = new List<string>();
        foreach (var (key, task) in options.Recurring)
        {
            if (task is null || string.IsNullOrWhiteSpace(task.Kind))
            {
                continue; // Reported by KeelOptionsValidator.
            }

            if (RecurringTasks.ValidateKind($"{KeelOptions.SectionName}:Recurring:{key}", task.Kind, task.Args, registry, options.JsonSerializerOptions) is { } error)
            {
                errors.Add(error);
            }
        }

        return errors.Count == 0 ? Microsoft.Extensions.Options.ValidateOptionsResult.Success : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(errors);
    }
}
