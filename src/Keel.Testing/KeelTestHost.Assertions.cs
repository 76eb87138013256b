using System.Globalization;
using System.Text.Json;
using Keel.Runtime;
using Keel.Storage;

namespace Keel.Testing;

public sealed partial class KeelTestHost
{
    private static readonly JobState[] Waiting = [JobState.Ready, JobState.Scheduled, JobState.Blocked];

    /// <summary>The jobs of <typeparamref name="TJob"/>'s kind, oldest first, in one state or all.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <param name="state">Only this state; null for every state.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The jobs with their arguments, errors and run history.</returns>
    public async Task<IReadOnlyList<JobInfo>> JobsAsync<TJob>(JobState? state = null, CancellationToken cancellationToken = default)
    {
        var kind = _registry.GetByType(typeof(TJob)).Kind;
        var jobs = new List<JobInfo>();
        long? before = null;
        while (true)
        {
            var page = await _storage.JobsListAsync(new JobsListParams(state, new JobFilter(Kind: kind), null, null, before, 500), cancellationToken);
            foreach (var summary in page)
            {
                if (await _storage.JobGetAsync(summary.Id, cancellationToken) is { } job)
                {
                    jobs.Add(job);
                }
            }

            if (page.Count < 500)
            {
                break;
            }

            before = page[^1].Id;
        }

        jobs.Reverse();
        return jobs;
    }

    /// <summary>
    /// Asserts that a job of <typeparamref name="TJob"/> whose arguments match is waiting to run (ready, scheduled or
    /// blocked by its concurrency limit).
    /// </summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments' type.</typeparam>
    /// <param name="match">Which arguments; null accepts any.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The first matching job.</returns>
    /// <exception cref="KeelAssertionException">No such job waits; the message lists the jobs of that kind.</exception>
    public Task<JobInfo> AssertEnqueuedAsync<TJob, TArgs>(Func<TArgs, bool>? match = null, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => AssertStateAsync<TJob, TArgs>(Waiting, "enqueued (ready, scheduled or blocked)", match, cancellationToken);

    /// <summary>Asserts that a job of <typeparamref name="TJob"/> whose arguments match ran and finished.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments' type.</typeparam>
    /// <param name="match">Which arguments; null accepts any.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The first matching job.</returns>
    /// <exception cref="KeelAssertionException">No such job finished; the message lists the jobs of that kind.</exception>
    public Task<JobInfo> AssertPerformedAsync<TJob, TArgs>(Func<TArgs, bool>? match = null, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => AssertStateAsync<TJob, TArgs>([JobState.Finished], "performed (finished)", match, cancellationToken);

    /// <summary>
    /// Asserts that a job of <typeparamref name="TJob"/> whose arguments match failed for good (attempts spent, a
    /// discard-on exception, or a lost worker under its policy).
    /// </summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments' type.</typeparam>
    /// <param name="match">Which arguments; null accepts any.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The first matching job; its <see cref="JobInfo.Errors"/> hold each attempt's exception.</returns>
    /// <exception cref="KeelAssertionException">No such job failed; the message lists the jobs of that kind.</exception>
    public Task<JobInfo> AssertFailedAsync<TJob, TArgs>(Func<TArgs, bool>? match = null, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => AssertStateAsync<TJob, TArgs>([JobState.Failed], "failed for good", match, cancellationToken);

    /// <summary>Asserts that no job of <typeparamref name="TJob"/> waits to run.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the assertion held.</returns>
    /// <exception cref="KeelAssertionException">One waits; the message lists them.</exception>
    public async Task AssertNothingEnqueuedAsync<TJob>(CancellationToken cancellationToken = default)
    {
        var waiting = (await JobsAsync<TJob>(null, cancellationToken)).Where(j => Waiting.Contains(j.State)).ToList();
        if (waiting.Count > 0)
        {
            throw new KeelAssertionException($"expected no {KindOf<TJob>()} job to be enqueued, found {waiting.Count}:{Describe(waiting)}");
        }
    }

    /// <summary>
    /// Asserts that recurring task <paramref name="key"/> is due at the fake clock's time: its next tick after its last
    /// run (or after the host's start, for a task that never ran) has come, so the next drain enqueues it.
    /// </summary>
    /// <param name="key">The task's key.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The due tick.</returns>
    /// <exception cref="KeelAssertionException">No such task, or its next tick is still ahead.</exception>
    public async Task<DateTimeOffset> AssertRecurringDueAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var tasks = await _storage.RecurringTasksListAsync(new RecurringTasksListParams(), cancellationToken);
        var info = tasks.FirstOrDefault(t => t.Task.Key == key)
            ?? throw new KeelAssertionException($"expected recurring task '{key}' to be due, but there is no such task (tasks: {string.Join(", ", tasks.Select(t => t.Task.Key).DefaultIfEmpty("none"))})");
        if (!RecurringSchedule.TryCreate(info.Task.Schedule, info.Task.TimeZone, out var schedule, out var error))
        {
            throw new KeelAssertionException($"recurring task '{key}' has an invalid schedule '{info.Task.Schedule}': {error}");
        }

        var after = info.LastRunAt ?? StartedAt;
        var next = schedule!.Next(after);
        var now = Time.GetUtcNow();
        if (next is null || next > now)
        {
            throw new KeelAssertionException(string.Create(CultureInfo.InvariantCulture, $"expected recurring task '{key}' ({info.Task.Schedule}) to be due at {now:O}, but its next tick after {after:O} is {(next is null ? "never" : next.Value.ToString("O", CultureInfo.InvariantCulture))}"));
        }

        return next.Value;
    }

    private async Task<JobInfo> AssertStateAsync<TJob, TArgs>(IReadOnlyCollection<JobState> states, string expected, Func<TArgs, bool>? match, CancellationToken cancellationToken)
    {
        var jobs = await JobsAsync<TJob>(null, cancellationToken);
        foreach (var job in jobs.Where(j => states.Contains(j.State)))
        {
            if (match is null || match(ArgsOf<TArgs>(job)))
            {
                return job;
            }
        }

        var what = match is null ? "a" : "a matching";
        throw new KeelAssertionException($"expected {what} {KindOf<TJob>()} job {expected}; jobs of that kind: {(jobs.Count == 0 ? "none" : Describe(jobs))}");
    }

    private TArgs ArgsOf<TArgs>(JobInfo job)
    {
        try
        {
            return JsonSerializer.Deserialize<TArgs>(job.Args, _options.JsonSerializerOptions)!;
        }
        catch (JsonException e)
        {
            throw new KeelAssertionException($"job {job.Id}'s arguments do not deserialize as {typeof(TArgs).Name}: {e.Message} (stored: {job.Args})", e);
        }
    }

    private string KindOf<TJob>() => _registry.GetByType(typeof(TJob)).Kind;

    private static string Describe(IEnumerable<JobInfo> jobs)
        => string.Concat(jobs.Select(j => string.Create(CultureInfo.InvariantCulture, $"\n  job {j.Id}: {j.State}, attempts {j.Attempts}, args {j.Args}{(j.Errors.Count > 0 ? ", last error " + j.Errors[^1].ExceptionType + ": " + j.Errors[^1].Message : string.Empty)}")));
}
