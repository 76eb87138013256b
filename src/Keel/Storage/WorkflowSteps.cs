namespace Keel.Storage;

/// <summary>A job that reached a final outcome in the current transaction, with what its row says about workflows.</summary>
/// <param name="JobId">The job.</param>
/// <param name="Outcome">How it settled: <see cref="ContinueWhen.Succeeded"/>, <see cref="ContinueWhen.Failed"/> or <see cref="ContinueWhen.Discarded"/>.</param>
/// <param name="HasDependents">Its <c>workflow</c> flag: jobs wait on it.</param>
/// <param name="BatchId">The batch it counts in, if any.</param>
public readonly record struct SettledJob(long JobId, ContinueWhen Outcome, bool HasDependents, long? BatchId)
{
    /// <summary>True when the job takes part in no workflow: nothing to do for it.</summary>
    public bool IsPlain => !HasDependents && BatchId is null;
}

/// <summary>An edge just settled by its parent's outcome: the child, what it waits for and its policy.</summary>
/// <param name="ChildId">The waiting job.</param>
/// <param name="WaitOn">The outcomes it waits for.</param>
/// <param name="OnUnmet">What it does on another outcome.</param>
public readonly record struct SettledEdge(long ChildId, ContinueWhen WaitOn, UnmetPolicy OnUnmet);

/// <summary>A batch's row right after one of its jobs was counted.</summary>
/// <param name="Pending">Jobs not yet settled.</param>
/// <param name="Unsuccessful">Jobs failed or discarded.</param>
/// <param name="Completed">Its callbacks were already enqueued (<c>completed_at</c> set).</param>
/// <param name="Succeeded">Its success callbacks were already enqueued (<c>succeeded_at</c> set).</param>
/// <param name="ParentBatchId">The batch it counts in as one job, if any.</param>
public readonly record struct BatchCounters(long Pending, long Unsuccessful, bool Completed, bool Succeeded, long? ParentBatchId);

/// <summary>Outcomes of one batch's jobs to count in one update.</summary>
internal readonly record struct BatchDelta(int Succeeded, int Failed, int Discarded)
{
    public BatchDelta Add(ContinueWhen outcome) => outcome switch
    {
        ContinueWhen.Succeeded => this with { Succeeded = Succeeded + 1 },
        ContinueWhen.Failed => this with { Failed = Failed + 1 },
        _ => this with { Discarded = Discarded + 1 },
    };
}

/// <summary>
/// The rules of workflows — continuations, dependencies, batches — written once for every engine. An engine makes one
/// per transaction and implements the primitives (one or two statements each); the rules run them in the transaction
/// of the outcome that causes them, so a rolled-back or fenced-out outcome advances nothing.
/// </summary>
/// <remarks>
/// Cascades run over a work list, never by recursion: a discarded child settles its own children as discarded, a
/// completed child batch counts in its parent batch, to any depth.
/// </remarks>
public abstract class WorkflowSteps
{
    /// <summary>Whether an edge waiting for <paramref name="waitOn"/> is met by <paramref name="outcome"/> (or runs anyway).</summary>
    /// <param name="waitOn">What the child waits for.</param>
    /// <param name="onUnmet">Its policy.</param>
    /// <param name="outcome">The parent's outcome.</param>
    /// <returns>True when the child may run as far as this parent is concerned.</returns>
    public static bool Proceeds(ContinueWhen waitOn, UnmetPolicy onUnmet, ContinueWhen outcome)
        => (waitOn & outcome) != 0 || onUnmet == UnmetPolicy.Run;

    /// <summary>
    /// Advances every workflow the jobs take part in: their waiting children (made due once every parent settled, or
    /// discarded when an edge is unmet and its policy says so, cascading), their batches' counters (completing a batch
    /// and enqueuing its callbacks once, counting a completed batch in its parent batch).
    /// </summary>
    /// <param name="settled">Jobs that settled in this transaction; plain ones are skipped.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task SettleAsync(IEnumerable<SettledJob> settled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settled);
        var jobs = new Queue<SettledJob>(settled.Where(s => !s.IsPlain));
        // One update per batch and wave, whatever the number of its jobs that settled: a completion of many jobs of
        // one batch (the common case) touches the batch row once. Ordered by id, so transactions lock batches in one order.
        var counts = new SortedDictionary<long, BatchDelta>();
        while (jobs.Count > 0 || counts.Count > 0)
        {
            while (jobs.TryDequeue(out var job))
            {
                if (job.HasDependents)
                {
                    foreach (var edge in await SettleEdgesAsync(job.JobId, job.Outcome, cancellationToken).ConfigureAwait(false))
                    {
                        if (!Proceeds(edge.WaitOn, edge.OnUnmet, job.Outcome))
                        {
                            if (await DiscardAwaitingAsync(edge.ChildId, cancellationToken).ConfigureAwait(false) is { } discarded)
                            {
                                jobs.Enqueue(discarded);
                            }
                        }
                        else if (await ParentSettledAsync(edge.ChildId, cancellationToken).ConfigureAwait(false) == 0)
                        {
                            await MakeAwaitingDueAsync(edge.ChildId, cancellationToken).ConfigureAwait(false);
                        }
                    }
                }

                if (job.BatchId is { } batchId)
                {
                    counts[batchId] = counts.GetValueOrDefault(batchId).Add(job.Outcome);
                }
            }

            var wave = counts.ToList();
            counts.Clear();
            foreach (var (batchId, delta) in wave)
            {
                if (await CountInBatchAsync(batchId, delta.Succeeded, delta.Failed, delta.Discarded, cancellationToken).ConfigureAwait(false) is { } counters
                    && await AfterCountAsync(batchId, counters, cancellationToken).ConfigureAwait(false) is { } parent)
                {
                    counts[parent.BatchId] = counts.GetValueOrDefault(parent.BatchId).Add(parent.Outcome);
                }
            }
        }
    }

    /// <summary>
    /// Completes a batch that has nothing pending (one just started empty, or whose last jobs were discarded at insert):
    /// enqueues its callbacks once, and counts it in its parent batch.
    /// </summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="counters">Its row.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public async Task CompleteIfDoneAsync(long batchId, BatchCounters counters, CancellationToken cancellationToken)
    {
        if (await AfterCountAsync(batchId, counters, cancellationToken).ConfigureAwait(false) is { } parent)
        {
            await SettleBatchInParentAsync(parent.BatchId, parent.Outcome, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Decides where a new job with parents goes: the edges are written (settled at once for parents already final),
    /// each parent is marked as having dependents. The engine then writes the job's execution row as told.
    /// </summary>
    /// <param name="childId">The new job.</param>
    /// <param name="dependencies">Its parents.</param>
    /// <param name="earlierIds">The ids of the jobs inserted before it in the same call, by position.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>How many parents it still waits for (0: due now), or null when it must be discarded (an unmet edge).</returns>
    /// <exception cref="ArgumentException">A parent is the job itself, a later job of the call, or does not exist.</exception>
    public async Task<int?> AttachParentsAsync(long childId, IReadOnlyList<NewDependency> dependencies, IReadOnlyList<long> earlierIds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dependencies);
        ArgumentNullException.ThrowIfNull(earlierIds);
        var waiting = 0;
        var unmet = false;
        var seen = new HashSet<long>();
        foreach (var dependency in dependencies)
        {
            long parentId;
            if (dependency.ParentIndex is { } index)
            {
                if (index < 0 || index >= earlierIds.Count)
                {
                    throw new ArgumentException($"job {childId} waits on job #{index} of the same insert, which does not come before it: a job may wait only on jobs inserted before it, so no cycle can form", nameof(dependencies));
                }

                parentId = earlierIds[index];
            }
            else
            {
                parentId = dependency.ParentId ?? throw new ArgumentException($"a dependency of job {childId} names no parent", nameof(dependencies));
            }

            if (parentId >= childId && dependency.ParentIndex is null)
            {
                throw new ArgumentException($"job {childId} waits on job {parentId}, which is not older than itself: a job may wait only on jobs that existed before it, so no cycle can form", nameof(dependencies));
            }

            if (!seen.Add(parentId))
            {
                continue; // Named twice: one edge.
            }

            var outcome = await MarkParentAsync(parentId, cancellationToken).ConfigureAwait(false);
            await InsertEdgeAsync(parentId, childId, dependency.When, dependency.OnUnmet, outcome, cancellationToken).ConfigureAwait(false);
            if (outcome is null)
            {
                waiting++;
            }
            else if (!Proceeds(dependency.When, dependency.OnUnmet, outcome.Value))
            {
                unmet = true;
            }
        }

        return unmet ? null : waiting;
    }

    /// <summary>Counts a completed child batch in its parent batch (and on up), as one job that succeeded or failed.</summary>
    private async Task SettleBatchInParentAsync(long batchId, ContinueWhen outcome, CancellationToken cancellationToken)
    {
        var next = ((long BatchId, ContinueWhen Outcome)?)(batchId, outcome);
        while (next is { } count)
        {
            var delta = default(BatchDelta).Add(count.Outcome);
            next = await CountInBatchAsync(count.BatchId, delta.Succeeded, delta.Failed, delta.Discarded, cancellationToken).ConfigureAwait(false) is { } counters
                ? await AfterCountAsync(count.BatchId, counters, cancellationToken).ConfigureAwait(false)
                : null;
        }
    }

    /// <summary>After a count: completes the batch when nothing is pending, enqueues the due callbacks; returns its count in its parent.</summary>
    private async Task<(long BatchId, ContinueWhen Outcome)?> AfterCountAsync(long batchId, BatchCounters counters, CancellationToken cancellationToken)
    {
        if (counters.Pending != 0)
        {
            return null;
        }

        var allSucceeded = counters.Unsuccessful == 0;
        if (!counters.Completed)
        {
            if (!await MarkBatchCompletedAsync(batchId, allSucceeded, cancellationToken).ConfigureAwait(false))
            {
                return null; // Completed by another transaction after all: its callbacks are its own.
            }

            BatchEvent[] events = allSucceeded ? [BatchEvent.Complete, BatchEvent.Success] : [BatchEvent.Complete, BatchEvent.Failure];
            await EnqueueCallbacksAsync(batchId, events, cancellationToken).ConfigureAwait(false);
            Counted(allSucceeded ? "succeeded" : "failed", events);
            return counters.ParentBatchId is { } parent ? (parent, allSucceeded ? ContinueWhen.Succeeded : ContinueWhen.Failed) : null;
        }

        // Completed before with failures, and retries have since made every job succeed: success, once.
        if (allSucceeded && !counters.Succeeded && await MarkBatchSucceededAsync(batchId, cancellationToken).ConfigureAwait(false))
        {
            await EnqueueCallbacksAsync(batchId, [BatchEvent.Success], cancellationToken).ConfigureAwait(false);
            Counted(null, [BatchEvent.Success]);
        }

        return null;
    }

    /// <summary>
    /// Counts a completed batch and its callbacks. Recorded as the step runs, inside its transaction: a transaction that
    /// then fails (and is retried) may count once more; the batch's row, not the metric, is the record.
    /// </summary>
    private static void Counted(string? outcome, IReadOnlyList<BatchEvent> events)
    {
        if (outcome is not null && KeelMetrics.BatchesCompleted.Enabled)
        {
            KeelMetrics.BatchesCompleted.Add(1, new KeyValuePair<string, object?>("keel.batch.outcome", outcome));
        }

        if (KeelMetrics.BatchCallbacks.Enabled)
        {
            foreach (var on in events)
            {
                KeelMetrics.BatchCallbacks.Add(1, new KeyValuePair<string, object?>("keel.batch.event", EventName(on)));
            }
        }
    }

    /// <summary>Records the parent's outcome on its unsettled edges and returns them (<c>UPDATE … WHERE parent_id = @id AND outcome IS NULL RETURNING …</c>).</summary>
    /// <param name="parentId">The parent.</param>
    /// <param name="outcome">Its outcome.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The edges just settled.</returns>
    protected abstract Task<IReadOnlyList<SettledEdge>> SettleEdgesAsync(long parentId, ContinueWhen outcome, CancellationToken cancellationToken);

    /// <summary>One parent of an awaiting job settled: decrements its count of parents waited for.</summary>
    /// <param name="childId">The child.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The parents it still waits for; null when it is not awaiting (already discarded).</returns>
    protected abstract Task<long?> ParentSettledAsync(long childId, CancellationToken cancellationToken);

    /// <summary>
    /// Discards a job if it is awaiting (its awaiting row goes, <c>discarded_at</c> set, its uniqueness key freed).
    /// </summary>
    /// <param name="childId">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The discarded job with its workflow flags; null when it was not awaiting.</returns>
    protected abstract Task<SettledJob?> DiscardAwaitingAsync(long childId, CancellationToken cancellationToken);

    /// <summary>
    /// An awaiting job's last parent settled: its awaiting row goes and it becomes scheduled (its own time is later)
    /// or due — ready, or blocked when its concurrency limit is full.
    /// </summary>
    /// <param name="childId">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    protected abstract Task MakeAwaitingDueAsync(long childId, CancellationToken cancellationToken);

    /// <summary>
    /// Moves jobs (or child batches) of a batch from pending to their outcomes' counters, in one update; returns the row
    /// after, or null when the batch is gone.
    /// </summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="succeeded">How many succeeded.</param>
    /// <param name="failed">How many failed for good.</param>
    /// <param name="discarded">How many were discarded.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    protected abstract Task<BatchCounters?> CountInBatchAsync(long batchId, int succeeded, int failed, int discarded, CancellationToken cancellationToken);

    /// <summary>Sets <c>completed_at</c> (and <c>succeeded_at</c> when all succeeded) if still null; false when another transaction did.</summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="allSucceeded">Every job succeeded.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    protected abstract Task<bool> MarkBatchCompletedAsync(long batchId, bool allSucceeded, CancellationToken cancellationToken);

    /// <summary>Sets <c>succeeded_at</c> if still null; false when another transaction did.</summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    protected abstract Task<bool> MarkBatchSucceededAsync(long batchId, CancellationToken cancellationToken);

    /// <summary>Enqueues the batch's callbacks for these events that have no job yet, and records their job ids.</summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="events">The events.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    protected abstract Task EnqueueCallbacksAsync(long batchId, IReadOnlyList<BatchEvent> events, CancellationToken cancellationToken);

    /// <summary>
    /// Marks a parent as having dependents (<c>workflow = 1</c>), which also locks its row against a concurrent outcome,
    /// and returns its outcome if it is already final.
    /// </summary>
    /// <param name="parentId">The parent.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>Its outcome, or null while it is not final.</returns>
    /// <exception cref="ArgumentException">There is no such job.</exception>
    protected abstract Task<ContinueWhen?> MarkParentAsync(long parentId, CancellationToken cancellationToken);

    /// <summary>Writes one edge.</summary>
    /// <param name="parentId">The parent.</param>
    /// <param name="childId">The child.</param>
    /// <param name="waitOn">What the child waits for.</param>
    /// <param name="onUnmet">Its policy.</param>
    /// <param name="outcome">The parent's outcome when already final; null otherwise.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    protected abstract Task InsertEdgeAsync(long parentId, long childId, ContinueWhen waitOn, UnmetPolicy onUnmet, ContinueWhen? outcome, CancellationToken cancellationToken);

    /// <summary>The stored name of a batch event (<c>success</c>, <c>complete</c>, <c>failure</c>).</summary>
    /// <param name="on">The event.</param>
    /// <returns>Its name.</returns>
    public static string EventName(BatchEvent on) => on switch
    {
        BatchEvent.Success => "success",
        BatchEvent.Complete => "complete",
        BatchEvent.Failure => "failure",
        _ => throw new ArgumentOutOfRangeException(nameof(on), on, "not a batch event"),
    };

    /// <summary>The batch event of a stored name.</summary>
    /// <param name="name">The name.</param>
    /// <returns>The event.</returns>
    public static BatchEvent ParseEvent(string name) => name switch
    {
        "success" => BatchEvent.Success,
        "complete" => BatchEvent.Complete,
        "failure" => BatchEvent.Failure,
        _ => throw new InvalidOperationException($"unknown batch event '{name}' in keel_batch_callbacks"),
    };

    /// <summary>A callback's job as stored in <c>keel_batch_callbacks.job</c> (JSON).</summary>
    /// <param name="job">The job.</param>
    /// <returns>The JSON.</returns>
    public static string CallbackJson(NewJob job)
    {
        ArgumentNullException.ThrowIfNull(job);
        using var buffer = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("kind", job.Kind);
            w.WriteString("queue", job.Queue);
            w.WriteString("args", job.Args);
            w.WriteNumber("priority", job.Priority);
            w.WriteNumber("maxAttempts", job.MaxAttempts);
            w.WriteNumber("maxWorkerLosses", job.MaxWorkerLosses);
            if (job.ConcurrencyKey is { } key)
            {
                w.WriteString("concurrencyKey", key);
                w.WriteNumber("concurrencyLimit", job.ConcurrencyLimit);
                w.WriteNumber("concurrencyDurationMs", (long)job.ConcurrencyDuration.TotalMilliseconds);
                w.WriteBoolean("discardOnConflict", job.DiscardOnConflict);
            }

            if (job.UniqueKey is { } unique)
            {
                w.WriteString("uniqueKey", unique);
            }

            if (job.TraceParent is { } trace)
            {
                w.WriteString("traceParent", trace);
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>A callback's job read back from <see cref="CallbackJson"/>; due now.</summary>
    /// <param name="json">The stored JSON.</param>
    /// <returns>The job.</returns>
    public static NewJob CallbackFromJson(string json)
    {
        using var document = System.Text.Json.JsonDocument.Parse(json);
        var o = document.RootElement;
        string? Text(string name) => o.TryGetProperty(name, out var p) ? p.GetString() : null;
        var job = new NewJob(Text("kind")!, Text("queue")!, Text("args")!, o.GetProperty("priority").GetInt32(), o.GetProperty("maxAttempts").GetInt32(), null, o.GetProperty("maxWorkerLosses").GetInt32())
        {
            UniqueKey = Text("uniqueKey"),
            TraceParent = Text("traceParent"),
        };
        return Text("concurrencyKey") is { } key
            ? job with
            {
                ConcurrencyKey = key,
                ConcurrencyLimit = o.GetProperty("concurrencyLimit").GetInt32(),
                ConcurrencyDuration = TimeSpan.FromMilliseconds(o.GetProperty("concurrencyDurationMs").GetInt64()),
                DiscardOnConflict = o.GetProperty("discardOnConflict").GetBoolean(),
            }
            : job;
    }

    /// <summary>The outcome code stored in <c>keel_job_dependencies.outcome</c>, read back; null for none.</summary>
    /// <param name="code">The stored value.</param>
    /// <returns>The outcome.</returns>
    public static ContinueWhen? OutcomeOf(object? code)
        => code is null or DBNull ? null : (ContinueWhen)Convert.ToInt32(code, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// An edge read by an engine's dependency statements: parent, child, wait_on, on_unmet, outcome.
    /// </summary>
    /// <param name="reader">The reader, on the row.</param>
    /// <returns>The edge.</returns>
    public static JobDependencyInfo ReadDependency(System.Data.Common.DbDataReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return new JobDependencyInfo(
            reader.GetInt64(0),
            reader.GetInt64(1),
            (ContinueWhen)Convert.ToInt32(reader.GetValue(2), System.Globalization.CultureInfo.InvariantCulture),
            (UnmetPolicy)Convert.ToInt32(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture),
            OutcomeOf(reader.GetValue(4)));
    }

    /// <summary>
    /// Refuses jobs that cannot join a batch: one with a uniqueness key, because a duplicate would return another job's
    /// id and never settle in the batch that counted it.
    /// </summary>
    /// <param name="jobs">The jobs joining a batch.</param>
    /// <exception cref="ArgumentException">One has a uniqueness key.</exception>
    public static void CheckBatchJobs(IReadOnlyList<NewJob> jobs)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        foreach (var job in jobs)
        {
            if (job.UniqueKey is not null)
            {
                throw new ArgumentException($"a job of kind '{job.Kind}' with uniqueness key '{job.UniqueKey}' cannot join a batch: a duplicate would be another job, which the batch would wait for in vain", nameof(jobs));
            }
        }
    }

    /// <summary>The exception for a parent that does not exist.</summary>
    /// <param name="parentId">The parent.</param>
    /// <returns>The exception.</returns>
    protected static ArgumentException NoSuchParent(long parentId)
        => new($"job {parentId} does not exist (never enqueued, or already finished and deleted): a continuation needs its parent's outcome, so it cannot wait on it", "parameters");

    /// <summary>The exception for a batch that is complete or missing.</summary>
    /// <param name="batchId">The batch.</param>
    /// <returns>The exception.</returns>
    public static KeelBatchClosedException BatchClosed(long batchId)
        => new($"batch {batchId} has completed (its callbacks were enqueued) or does not exist: it takes no more jobs");
}
