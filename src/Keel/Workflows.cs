using System.Collections;
using System.Runtime.CompilerServices;

namespace Keel;

/// <summary>The outcomes of a parent job that a continuation waits for (flags: combine them).</summary>
[Flags]
public enum ContinueWhen
{
    /// <summary>The parent ran to completion.</summary>
    Succeeded = 1,

    /// <summary>The parent failed for good (attempts spent, a discard-on exception, worker losses spent).</summary>
    Failed = 2,

    /// <summary>The parent was discarded (by a person, a policy, or because its own parent settled unmet).</summary>
    Discarded = 4,

    /// <summary>Any final outcome: succeeded, failed or discarded.</summary>
    Finished = Succeeded | Failed | Discarded,
}

/// <summary>What a continuation does when a parent ends in an outcome its <see cref="EnqueueOptions.When"/> does not wait for.</summary>
public enum UnmetPolicy
{
    /// <summary>The continuation is discarded (and its own continuations settle as discarded).</summary>
    Discard,

    /// <summary>The continuation runs anyway, once every parent has settled.</summary>
    Run,
}

/// <summary>
/// A parent job named by <see cref="EnqueueOptions.After"/>: an existing job's id, or an earlier job of the same
/// <see cref="IKeelClient.EnqueueManyAsync(IReadOnlyList{JobRequest}, CancellationToken)"/> call or batch builder.
/// A job may only wait on jobs that exist before it, so a cycle cannot be formed.
/// </summary>
public readonly record struct JobRef
{
    private JobRef(long? id, int? index)
    {
        Id = id;
        Index = index;
    }

    /// <summary>The id of an existing job; null when <see cref="Index"/> names the parent.</summary>
    public long? Id { get; }

    /// <summary>The position (from 0) of the parent in the same enqueue call or batch; null when <see cref="Id"/> names it.</summary>
    public int? Index { get; }

    /// <summary>An existing job.</summary>
    /// <param name="jobId">Its id.</param>
    /// <returns>The reference.</returns>
    public static JobRef Job(long jobId) => new(jobId, null);

    /// <summary>An earlier job of the same enqueue call or batch builder; it must come before the job that waits on it.</summary>
    /// <param name="index">Its position (from 0) in the call.</param>
    /// <returns>The reference.</returns>
    public static JobRef Earlier(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        return new(null, index);
    }

    /// <summary>An existing job, by id.</summary>
    /// <param name="jobId">The id.</param>
    public static implicit operator JobRef(long jobId) => Job(jobId);

    /// <inheritdoc />
    public override string ToString() => Id is { } id ? $"job {id}" : $"job #{Index} of this call";
}

/// <summary>The parents of a continuation: one job (<c>After = parentId</c>) or several (<c>After = [a, b, c]</c>).</summary>
[CollectionBuilder(typeof(JobParents), nameof(Create))]
public sealed class JobParents : IReadOnlyList<JobRef>
{
    private readonly JobRef[] _parents;

    private JobParents(JobRef[] parents) => _parents = parents;

    /// <inheritdoc />
    public int Count => _parents.Length;

    /// <inheritdoc />
    public JobRef this[int index] => _parents[index];

    /// <summary>Builds the parents from a list (what a collection expression calls).</summary>
    /// <param name="parents">The parents.</param>
    /// <returns>The parents.</returns>
    public static JobParents Create(ReadOnlySpan<JobRef> parents) => new(parents.ToArray());

    /// <summary>Builds the parents from job ids.</summary>
    /// <param name="jobIds">The ids.</param>
    /// <returns>The parents.</returns>
    public static JobParents Of(IEnumerable<long> jobIds)
    {
        ArgumentNullException.ThrowIfNull(jobIds);
        return new([.. jobIds.Select(JobRef.Job)]);
    }

    /// <summary>One existing parent.</summary>
    /// <param name="jobId">Its id.</param>
    public static implicit operator JobParents(long jobId) => new([JobRef.Job(jobId)]);

    /// <summary>One parent.</summary>
    /// <param name="parent">The parent.</param>
    public static implicit operator JobParents(JobRef parent) => new([parent]);

    /// <summary>Several existing parents.</summary>
    /// <param name="jobIds">Their ids.</param>
    public static implicit operator JobParents(long[] jobIds) => Of(jobIds);

    /// <inheritdoc />
    public IEnumerator<JobRef> GetEnumerator() => ((IEnumerable<JobRef>)_parents).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>Which outcome of a batch a callback is enqueued on.</summary>
public enum BatchEvent
{
    /// <summary>Every job of the batch settled and all succeeded (also later, once retries made them all succeed).</summary>
    Success,

    /// <summary>Every job of the batch settled, whatever the outcomes.</summary>
    Complete,

    /// <summary>Every job of the batch settled and at least one failed or was discarded.</summary>
    Failure,
}

/// <summary>Where a batch is.</summary>
public enum BatchState
{
    /// <summary>Jobs are still pending; more may be added.</summary>
    Pending,

    /// <summary>Every job settled and all succeeded.</summary>
    Succeeded,

    /// <summary>Every job settled and at least one failed or was discarded.</summary>
    Failed,
}

/// <summary>Options of a new batch.</summary>
public sealed record BatchOptions
{
    /// <summary>A batch this one belongs to: it counts as one pending job there until it completes.</summary>
    public long? ParentBatchId { get; init; }

    /// <summary>Words for people (the dashboard, <c>keel batches</c>); optional.</summary>
    public string? Description { get; init; }
}

/// <summary>Collects the jobs and callbacks of a new batch (see <see cref="IKeelClient.StartBatchAsync(Action{BatchBuilder}, BatchOptions?, CancellationToken)"/>).</summary>
public sealed class BatchBuilder
{
    private readonly List<JobRequest> _jobs = [];
    private readonly List<(BatchEvent On, JobRequest Job)> _callbacks = [];

    internal BatchBuilder()
    {
    }

    /// <summary>Words for people; overrides <see cref="BatchOptions.Description"/>.</summary>
    public string? Description { get; set; }

    /// <summary>The jobs added so far, in order.</summary>
    public IReadOnlyList<JobRequest> Jobs => _jobs;

    /// <summary>The callbacks added so far.</summary>
    public IReadOnlyList<(BatchEvent On, JobRequest Job)> Callbacks => _callbacks;

    /// <summary>Adds a job to the batch.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Per-enqueue options; <see cref="EnqueueOptions.After"/> may name earlier jobs of this batch by the <see cref="JobRef"/> this method returned for them.</param>
    /// <returns>A reference to the job for later jobs of this batch to wait on.</returns>
    public JobRef Add<TJob, TArgs>(TArgs args, EnqueueOptions? options = null)
        where TJob : IJob<TArgs>
        => Add(JobRequest.Create<TJob, TArgs>(args, options));

    /// <summary>Adds a job to the batch.</summary>
    /// <param name="request">The job.</param>
    /// <returns>A reference to the job for later jobs of this batch to wait on.</returns>
    public JobRef Add(JobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        _jobs.Add(request);
        return JobRef.Earlier(_jobs.Count - 1);
    }

    /// <summary>Enqueues a job once every job of the batch succeeded.</summary>
    /// <typeparam name="TJob">The callback's job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Queue, priority… (<see cref="EnqueueOptions.After"/> is not allowed on a callback).</param>
    /// <returns>This builder.</returns>
    public BatchBuilder OnSuccess<TJob, TArgs>(TArgs args, EnqueueOptions? options = null)
        where TJob : IJob<TArgs>
        => Callback(BatchEvent.Success, JobRequest.Create<TJob, TArgs>(args, options));

    /// <summary>Enqueues a job once every job of the batch settled, whatever the outcomes.</summary>
    /// <typeparam name="TJob">The callback's job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Queue, priority….</param>
    /// <returns>This builder.</returns>
    public BatchBuilder OnComplete<TJob, TArgs>(TArgs args, EnqueueOptions? options = null)
        where TJob : IJob<TArgs>
        => Callback(BatchEvent.Complete, JobRequest.Create<TJob, TArgs>(args, options));

    /// <summary>Enqueues a job once every job of the batch settled and one or more failed or were discarded.</summary>
    /// <typeparam name="TJob">The callback's job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Queue, priority….</param>
    /// <returns>This builder.</returns>
    public BatchBuilder OnFailure<TJob, TArgs>(TArgs args, EnqueueOptions? options = null)
        where TJob : IJob<TArgs>
        => Callback(BatchEvent.Failure, JobRequest.Create<TJob, TArgs>(args, options));

    private BatchBuilder Callback(BatchEvent on, JobRequest job)
    {
        if (job.Options.After is not null)
        {
            throw new ArgumentException($"a batch's {on} callback cannot wait on other jobs (After); it waits for the batch", nameof(job));
        }

        _callbacks.Add((on, job));
        return this;
    }
}

/// <summary>A batch callback as stored.</summary>
/// <param name="On">When it is enqueued.</param>
/// <param name="Kind">The callback's job kind.</param>
/// <param name="JobId">The callback job once enqueued; null before.</param>
public sealed record BatchCallbackInfo(BatchEvent On, string Kind, long? JobId);

/// <summary>A batch as stored: its counts, state and callbacks.</summary>
public sealed record BatchInfo
{
    /// <summary>The batch id.</summary>
    public required long Id { get; init; }

    /// <summary>The batch it counts in as one job, if any.</summary>
    public long? ParentBatchId { get; init; }

    /// <summary>Words for people, if given.</summary>
    public string? Description { get; init; }

    /// <summary>Jobs (and child batches) ever added.</summary>
    public required long Total { get; init; }

    /// <summary>Jobs (and child batches) not yet settled.</summary>
    public required long Pending { get; init; }

    /// <summary>Jobs that ran to completion (and child batches that succeeded).</summary>
    public required long Succeeded { get; init; }

    /// <summary>Jobs that failed for good (and child batches that did not succeed).</summary>
    public required long Failed { get; init; }

    /// <summary>Jobs that were discarded.</summary>
    public required long Discarded { get; init; }

    /// <summary>When it was started.</summary>
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>When its last pending job settled (its callbacks were enqueued then); null while pending.</summary>
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>When every job had succeeded (its success callbacks were enqueued then); null until then.</summary>
    public DateTimeOffset? SucceededAt { get; init; }

    /// <summary>Its callbacks.</summary>
    public IReadOnlyList<BatchCallbackInfo> Callbacks { get; init; } = [];

    /// <summary>Where it is.</summary>
    public BatchState State => CompletedAt is null ? BatchState.Pending : (Failed + Discarded == 0 || SucceededAt is not null) ? BatchState.Succeeded : BatchState.Failed;
}

/// <summary>One edge of a job's dependencies, as <see cref="JobInfo.Parents"/> and <see cref="JobInfo.Children"/> list them.</summary>
/// <param name="ParentId">The job waited on.</param>
/// <param name="ChildId">The job that waits.</param>
/// <param name="When">The outcomes the child waits for.</param>
/// <param name="OnUnmet">What the child does on another outcome.</param>
/// <param name="Outcome">How the parent settled (<see cref="ContinueWhen.Succeeded"/>, <see cref="ContinueWhen.Failed"/> or <see cref="ContinueWhen.Discarded"/>); null while it has not.</param>
public sealed record JobDependencyInfo(long ParentId, long ChildId, ContinueWhen When, UnmetPolicy OnUnmet, ContinueWhen? Outcome);

/// <summary>The fluent form of a continuation: <c>keel.After(parent).EnqueueAsync&lt;TJob, TArgs&gt;(args)</c>.</summary>
public sealed class ContinuationBuilder
{
    private readonly IKeelClient _client;
    private readonly JobParents _parents;
    private ContinueWhen _when = ContinueWhen.Succeeded;
    private UnmetPolicy _onUnmet = UnmetPolicy.Discard;

    internal ContinuationBuilder(IKeelClient client, JobParents parents)
    {
        _client = client;
        _parents = parents;
    }

    /// <summary>Waits for these outcomes of the parents (<see cref="ContinueWhen.Succeeded"/> by default).</summary>
    /// <param name="when">The outcomes.</param>
    /// <returns>This builder.</returns>
    public ContinuationBuilder When(ContinueWhen when)
    {
        _when = when;
        return this;
    }

    /// <summary>Runs the continuation even when a parent ends in another outcome (instead of discarding it).</summary>
    /// <returns>This builder.</returns>
    public ContinuationBuilder RunAnyway()
    {
        _onUnmet = UnmetPolicy.Run;
        return this;
    }

    /// <summary>Enqueues the continuation.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Other options (their <see cref="EnqueueOptions.After"/>, <see cref="EnqueueOptions.When"/> and <see cref="EnqueueOptions.OnUnmet"/> are replaced).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The continuation's id.</returns>
    public Task<long> EnqueueAsync<TJob, TArgs>(TArgs args, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => _client.EnqueueAsync<TJob, TArgs>(args, (options ?? new EnqueueOptions()) with { After = _parents, When = _when, OnUnmet = _onUnmet }, cancellationToken);
}
