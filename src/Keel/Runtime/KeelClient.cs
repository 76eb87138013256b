using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.Options;

namespace Keel.Runtime;

/// <summary>The <see cref="IKeelClient"/>: serializes requests, applies per-kind defaults, inserts, wakes local workers.</summary>
internal sealed class KeelClient(IKeelStorage storage, JobRegistry registry, IOptions<KeelOptions> options, JobSignal signal, KeelClock clock) : IKeelClient
{
    public async Task<long> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
        => (await EnqueueManyAsync([request], cancellationToken))[0];

    public Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
        => InsertAsync(requests, null, null, cancellationToken);

    public Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return InsertAsync(requests, connection, transaction, cancellationToken);
    }

    public Task<JobInfo?> GetJobAsync(long jobId, CancellationToken cancellationToken = default)
        => storage.JobGetAsync(jobId, cancellationToken);

    public Task<long> StartBatchAsync(Action<BatchBuilder> build, BatchOptions? options = null, CancellationToken cancellationToken = default)
        => StartAsync(build, options, null, null, cancellationToken);

    public Task<long> StartBatchAsync(Action<BatchBuilder> build, BatchOptions? options, DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return StartAsync(build, options, connection, transaction, cancellationToken);
    }

    public Task<IReadOnlyList<long>> AddToBatchAsync(long batchId, IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
        => InsertAsync(requests, null, null, cancellationToken, batchId);

    public Task<BatchInfo?> GetBatchAsync(long batchId, CancellationToken cancellationToken = default)
        => storage.BatchGetAsync(batchId, cancellationToken);

    private async Task<long> StartAsync(Action<BatchBuilder> build, BatchOptions? options, DbConnection? connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(build);
        var builder = new BatchBuilder();
        build(builder);
        var now = clock.UtcNow;
        var jobs = new NewJob[builder.Jobs.Count];
        for (var i = 0; i < jobs.Length; i++)
        {
            jobs[i] = ToNewJob(builder.Jobs[i], now, i);
        }

        var callbacks = builder.Callbacks.Select(c => new NewBatchCallback(c.On, ToNewJob(c.Job, now, 0))).ToArray();
        var started = await storage.BatchStartAsync(
            new BatchStartParams(jobs, callbacks, clock.StorageNow, connection, transaction)
            {
                ParentBatchId = options?.ParentBatchId,
                Description = builder.Description ?? options?.Description,
            },
            cancellationToken);
        Counted(jobs, now);
        if (KeelMetrics.BatchesStarted.Enabled)
        {
            KeelMetrics.BatchesStarted.Add(1);
        }

        return started.BatchId;
    }

    /// <summary>Counts enqueued jobs and wakes local workers when some are due now.</summary>
    private void Counted(NewJob[] jobs, DateTimeOffset now)
    {
        if (KeelMetrics.Enqueued.Enabled)
        {
            foreach (var job in jobs)
            {
                KeelMetrics.Enqueued.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
            }
        }

        if (Array.Exists(jobs, j => j.Dependencies is null && (j.ScheduledAt is null || j.ScheduledAt <= now)))
        {
            signal.Notify();
        }
    }

    private async Task<IReadOnlyList<long>> InsertAsync(IReadOnlyList<JobRequest> requests, DbConnection? connection, DbTransaction? transaction, CancellationToken cancellationToken, long? batchId = null)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (requests.Count == 0)
        {
            return [];
        }

        var now = clock.UtcNow;
        var jobs = new NewJob[requests.Count];
        for (var i = 0; i < jobs.Length; i++)
        {
            jobs[i] = ToNewJob(requests[i], now, i);
        }

        using var activity = StartEnqueue(jobs);
        var traceParent = KeelTracing.TraceParentOf(activity ?? Activity.Current);
        if (traceParent is not null)
        {
            for (var i = 0; i < jobs.Length; i++)
            {
                jobs[i] = jobs[i] with { TraceParent = traceParent };
            }
        }

        IReadOnlyList<long> ids;
        try
        {
            ids = await storage.JobsInsertAsync(new JobsInsertParams(jobs, clock.StorageNow, connection, transaction) { BatchId = batchId }, cancellationToken);
        }
        catch (Exception e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            throw;
        }

        if (activity is { IsAllDataRequested: true } && ids.Count == 1)
        {
            activity.SetTag("keel.job.id", ids[0]);
        }

        Counted(jobs, now);
        return ids;
    }

    /// <summary>The producer span of one enqueue call: <c>enqueue {kind}</c> (or <c>enqueue</c> for a mixed batch).</summary>
    private static Activity? StartEnqueue(NewJob[] jobs)
    {
        if (!KeelTracing.Source.HasListeners())
        {
            return null;
        }

        var kind = jobs[0].Kind;
        var sameKind = Array.TrueForAll(jobs, j => j.Kind == kind);
        var activity = KeelTracing.Source.StartActivity(sameKind ? "enqueue " + kind : "enqueue", ActivityKind.Producer);
        if (activity is { IsAllDataRequested: true })
        {
            if (sameKind)
            {
                activity.SetTag("keel.kind", kind);
            }

            var queue = jobs[0].Queue;
            if (Array.TrueForAll(jobs, j => j.Queue == queue))
            {
                activity.SetTag("keel.queue", queue);
                activity.SetTag("messaging.destination.name", queue);
            }

            activity.SetTag("keel.job.count", jobs.Length);
            activity.SetTag("messaging.system", "keel");
            activity.SetTag("messaging.operation.type", "send");
        }

        return activity;
    }

    private NewJob ToNewJob(JobRequest request, DateTimeOffset now, int index)
    {
        ArgumentNullException.ThrowIfNull(request);
        var descriptor = registry.GetByType(request.JobType);
        var enqueue = request.Options;
        if (enqueue.ScheduledAt is not null && enqueue.Delay is not null)
        {
            throw new ArgumentException($"enqueue of {descriptor.Kind} sets both ScheduledAt and Delay; set one", nameof(request));
        }

        if (enqueue.Delay < TimeSpan.Zero)
        {
            throw new ArgumentException($"enqueue of {descriptor.Kind} has a negative Delay ({enqueue.Delay})", nameof(request));
        }

        var queue = enqueue.Queue ?? descriptor.Options.Queue;
        if (string.IsNullOrEmpty(queue) || queue.Contains('*', StringComparison.Ordinal))
        {
            throw new ArgumentException($"enqueue of {descriptor.Kind} names an invalid queue '{queue}': a queue name is non-empty and has no '*'", nameof(request));
        }

        var maxAttempts = enqueue.MaxAttempts ?? descriptor.Options.MaxAttempts;
        if (maxAttempts < 1)
        {
            throw new ArgumentException($"enqueue of {descriptor.Kind} sets MaxAttempts to {maxAttempts}; it must be at least 1", nameof(request));
        }

        var args = JsonSerializer.Serialize(request.Args, request.ArgsType, options.Value.JsonSerializerOptions);
        CheckSize(descriptor.Kind, args, options.Value.MaxArgumentsBytes);
        var scheduledAt = enqueue.ScheduledAt ?? (enqueue.Delay is { } delay ? now + delay : null);
        if (enqueue.UniqueKey is { Length: 0 })
        {
            throw new ArgumentException($"enqueue of {descriptor.Kind} has an empty UniqueKey; leave it null for no uniqueness", nameof(request));
        }

        var maxWorkerLosses = descriptor.Options.OnWorkerLost == WorkerLostPolicy.Fail ? 0 : descriptor.Options.MaxWorkerLosses;
        var job = new NewJob(descriptor.Kind, queue, args, enqueue.Priority ?? descriptor.Options.Priority, maxAttempts, scheduledAt, maxWorkerLosses)
        {
            UniqueKey = enqueue.UniqueKey is { } unique ? $"{descriptor.Kind}/{unique}" : null,
            Dependencies = Dependencies(descriptor.Kind, enqueue, index),
        };
        return descriptor.Options.Concurrency is { } limit ? WithConcurrency(job, descriptor.Kind, limit, request.Args) : job;
    }

    /// <summary>
    /// The parents of a continuation, checked: each an existing job or an earlier job of the same call, so that no cycle
    /// can ever be stored.
    /// </summary>
    internal static IReadOnlyList<NewDependency>? Dependencies(string kind, EnqueueOptions enqueue, int index)
    {
        if (enqueue.After is not { } after)
        {
            return null;
        }

        if (after.Count == 0)
        {
            throw new ArgumentException($"enqueue of {kind} sets After to no parents; leave it null for a job that waits for none", nameof(enqueue));
        }

        if ((enqueue.When & ContinueWhen.Finished) == 0 || (enqueue.When & ~ContinueWhen.Finished) != 0)
        {
            throw new ArgumentException($"enqueue of {kind} sets When to {(int)enqueue.When}, which names no outcome; use Succeeded, Failed, Discarded or Finished", nameof(enqueue));
        }

        if (enqueue.UniqueKey is not null)
        {
            throw new ArgumentException($"enqueue of {kind} sets both UniqueKey and After; a continuation cannot be unique (a duplicate would wait on other parents)", nameof(enqueue));
        }

        if (!Enum.IsDefined(enqueue.OnUnmet))
        {
            throw new ArgumentException($"enqueue of {kind} sets OnUnmet to {(int)enqueue.OnUnmet}; use Discard or Run", nameof(enqueue));
        }

        var dependencies = new NewDependency[after.Count];
        for (var i = 0; i < after.Count; i++)
        {
            var parent = after[i];
            if (parent.Index is { } earlier && earlier >= index)
            {
                throw new ArgumentException($"job #{index} of this call ({kind}) waits on job #{earlier} of the same call: a job may wait only on jobs before it, which is what keeps cycles impossible", nameof(enqueue));
            }

            if (parent.Id is <= 0)
            {
                throw new ArgumentException($"enqueue of {kind} waits on job id {parent.Id}, which no job can have", nameof(enqueue));
            }

            dependencies[i] = new NewDependency(parent.Id, parent.Index, enqueue.When, enqueue.OnUnmet);
        }

        return dependencies;
    }

    /// <summary>
    /// Refuses arguments over <see cref="KeelOptions.MaxArgumentsBytes"/>: every claim reads the row, and a job list
    /// or the dashboard would carry megabytes for one job. UTF-8 takes one to three bytes per UTF-16 unit, so only
    /// text longer than a third of the limit is counted.
    /// </summary>
    internal static void CheckSize(string kind, string args, int limit)
    {
        if ((long)args.Length * 3 <= limit)
        {
            return;
        }

        var size = System.Text.Encoding.UTF8.GetByteCount(args);
        if (size > limit)
        {
            throw new ArgumentException(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"the arguments of job kind '{kind}' are {size:N0} bytes of JSON, over the limit of {limit:N0} bytes (Keel:MaxArgumentsBytes): keep large data elsewhere (a file or blob store, a table of your own) and pass a reference to it"), "request");
        }
    }

    /// <summary>Adds the kind's concurrency key (<c>kind/key</c>, computed from the arguments) and its terms.</summary>
    internal static NewJob WithConcurrency(NewJob job, string kind, ConcurrencyOptions limit, object? args)
    {
        string key;
        try
        {
            key = limit.Key(args);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new ArgumentException($"the concurrency key of job kind '{kind}' could not be computed from its arguments: {e.Message}", nameof(args), e);
        }

        if (string.IsNullOrEmpty(key))
        {
            throw new ArgumentException($"the concurrency key of job kind '{kind}' is empty for these arguments", nameof(args));
        }

        return job with
        {
            ConcurrencyKey = $"{kind}/{key}",
            ConcurrencyLimit = limit.Limit,
            ConcurrencyDuration = limit.Duration,
            DiscardOnConflict = limit.OnConflict == ConcurrencyConflict.Discard,
        };
    }
}
