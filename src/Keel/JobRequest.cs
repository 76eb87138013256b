namespace Keel;

/// <summary>Per-enqueue choices that override the job kind's defaults.</summary>
public sealed record EnqueueOptions
{
    /// <summary>The queue; the kind's default when null.</summary>
    public string? Queue { get; init; }

    /// <summary>The priority (smaller runs first); the kind's default when null.</summary>
    public int? Priority { get; init; }

    /// <summary>Run no earlier than this time. Mutually exclusive with <see cref="Delay"/>.</summary>
    public DateTimeOffset? ScheduledAt { get; init; }

    /// <summary>Run no earlier than this long from now. Mutually exclusive with <see cref="ScheduledAt"/>.</summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>Attempts before the job fails for good; the kind's default when null.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>
    /// A uniqueness key: while a job of this kind with this key is ready, scheduled, blocked or running, enqueueing
    /// another returns the existing job's id instead of creating one. Scoped to the job kind.
    /// </summary>
    public string? UniqueKey { get; init; }

    /// <summary>
    /// The parents this job waits for (a continuation, or a node of a dependency graph): <c>After = parentId</c> or
    /// <c>After = [a, b, c]</c>. The job is <see cref="JobState.Awaiting"/> until every parent settles, then due. Parents
    /// are existing jobs or earlier jobs of the same call (<see cref="JobRef.Earlier"/>), so no cycle can form.
    /// </summary>
    public JobParents? After { get; init; }

    /// <summary>The parents' outcomes this job waits for; <see cref="ContinueWhen.Succeeded"/> by default.</summary>
    public ContinueWhen When { get; init; } = ContinueWhen.Succeeded;

    /// <summary>What happens when a parent ends in another outcome: discard this job (default) or run it anyway.</summary>
    public UnmetPolicy OnUnmet { get; init; } = UnmetPolicy.Discard;
}

/// <summary>One job to enqueue: its kind, its arguments and the per-enqueue options.</summary>
public sealed class JobRequest
{
    private JobRequest(Type jobType, Type argsType, object? args, EnqueueOptions? options)
    {
        JobType = jobType;
        ArgsType = argsType;
        Args = args;
        Options = options ?? new EnqueueOptions();
    }

    /// <summary>The job class.</summary>
    public Type JobType { get; }

    /// <summary>The declared arguments type, used to serialize <see cref="Args"/>.</summary>
    public Type ArgsType { get; }

    /// <summary>The arguments.</summary>
    public object? Args { get; }

    /// <summary>The per-enqueue options.</summary>
    public EnqueueOptions Options { get; }

    /// <summary>Describes a job of type <typeparamref name="TJob"/> to enqueue.</summary>
    /// <typeparam name="TJob">The job class, registered with <c>AddJob</c>.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Overrides for this enqueue.</param>
    /// <returns>The request.</returns>
    public static JobRequest Create<TJob, TArgs>(TArgs args, EnqueueOptions? options = null)
        where TJob : IJob<TArgs>
        => new(typeof(TJob), typeof(TArgs), args, options);
}
