namespace Keel;

/// <summary>Per-kind settings: where a job goes and how its failures are handled.</summary>
public sealed class JobOptions
{
    /// <summary>The queue jobs of this kind go to unless the enqueue says otherwise.</summary>
    public string Queue { get; set; } = KeelDefaults.Queue;

    /// <summary>The priority; smaller numbers run first.</summary>
    public int Priority { get; set; }

    /// <summary>How many attempts a job gets before it is failed for good. At least 1.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>The delay between attempts.</summary>
    public BackoffOptions Backoff { get; set; } = new();

    /// <summary>How long one run may take; the job's token is cancelled after it. Null means no limit.</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// What to do with a job whose worker died while running it (process killed, frozen, session lost).
    /// </summary>
    public WorkerLostPolicy OnWorkerLost { get; set; } = WorkerLostPolicy.Retry;

    /// <summary>
    /// How many lost workers a job may survive under <see cref="WorkerLostPolicy.Retry"/> before it is
    /// failed; protects the queue from a job that kills its own worker (an OOM, say).
    /// </summary>
    public int MaxWorkerLosses { get; set; } = 2;

    /// <summary>Exception types that fail the job at once instead of retrying it.</summary>
    public IList<Type> DiscardOn { get; } = new List<Type>();

    /// <summary>A limit on how many jobs of this kind with the same key run at once; null for none.</summary>
    public ConcurrencyOptions? Concurrency { get; set; }

    /// <summary>
    /// Lets at most <paramref name="limit"/> jobs of this kind whose arguments give the same key be ready or running
    /// at once; the others wait (blocked) or, with <see cref="ConcurrencyConflict.Discard"/>, are discarded at enqueue.
    /// </summary>
    /// <typeparam name="TArgs">The kind's arguments type.</typeparam>
    /// <param name="key">Computes the key from the arguments, e.g. <c>args =&gt; args.AccountId.ToString()</c>.</param>
    /// <param name="limit">Permits per key (at least 1).</param>
    /// <param name="duration">How long a permit or a blocked wait lasts before maintenance re-checks it; 15 minutes by default.</param>
    /// <param name="onConflict">Block (default) or discard a job that finds the limit full.</param>
    /// <returns>These options, for chaining.</returns>
    public JobOptions LimitConcurrency<TArgs>(Func<TArgs, string> key, int limit = 1, TimeSpan? duration = null, ConcurrencyConflict onConflict = ConcurrencyConflict.Block)
    {
        ArgumentNullException.ThrowIfNull(key);
        Concurrency = new ConcurrencyOptions
        {
            Key = args => key((TArgs)args!),
            Limit = limit,
            Duration = duration ?? TimeSpan.FromMinutes(15),
            OnConflict = onConflict,
        };
        return this;
    }

    /// <summary>Fails the job at once, without retrying, when it throws <typeparamref name="TException"/>.</summary>
    /// <typeparam name="TException">An exception type; derived types match too.</typeparam>
    /// <returns>These options, for chaining.</returns>
    public JobOptions DiscardOnException<TException>()
        where TException : Exception
    {
        DiscardOn.Add(typeof(TException));
        return this;
    }

    internal JobOptions Clone()
    {
        var copy = new JobOptions
        {
            Queue = Queue,
            Priority = Priority,
            MaxAttempts = MaxAttempts,
            Backoff = Backoff with { },
            Timeout = Timeout,
            OnWorkerLost = OnWorkerLost,
            MaxWorkerLosses = MaxWorkerLosses,
            Concurrency = Concurrency,
        };
        foreach (var type in DiscardOn)
        {
            copy.DiscardOn.Add(type);
        }

        return copy;
    }
}

/// <summary>Exponential backoff with jitter: <c>min(Max, Base × 2^(attempt-1))</c>, varied by ±<see cref="Jitter"/>.</summary>
public sealed record BackoffOptions
{
    /// <summary>The delay after the first failed attempt.</summary>
    public TimeSpan Base { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>The longest delay.</summary>
    public TimeSpan Max { get; init; } = TimeSpan.FromHours(24);

    /// <summary>The fraction (0 to 1) by which each delay is randomly varied, so retries do not stampede.</summary>
    public double Jitter { get; init; } = 0.2;
}

/// <summary>A per-kind concurrency limit.</summary>
public sealed record ConcurrencyOptions
{
    /// <summary>Computes the key from the job's arguments object; jobs with equal keys share the limit.</summary>
    public required Func<object?, string> Key { get; init; }

    /// <summary>Permits per key.</summary>
    public int Limit { get; init; } = 1;

    /// <summary>How long a permit or a blocked wait lasts before maintenance re-checks it. Set it above your longest run.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>What a job that finds the limit full does.</summary>
    public ConcurrencyConflict OnConflict { get; init; } = ConcurrencyConflict.Block;
}

/// <summary>What happens to a job enqueued while its concurrency limit is full.</summary>
public enum ConcurrencyConflict
{
    /// <summary>It waits as a blocked job and is released when a permit frees.</summary>
    Block,

    /// <summary>It is discarded at once (kept as a discarded job for the record).</summary>
    Discard,
}

/// <summary>What recovery does with a job whose worker was lost.</summary>
public enum WorkerLostPolicy
{
    /// <summary>Back to ready, counted as an attempt, up to <see cref="JobOptions.MaxWorkerLosses"/>; then failed.</summary>
    Retry,

    /// <summary>Failed at once with a <c>WorkerLostException</c> naming the cause.</summary>
    Fail,
}

/// <summary>Keel's built-in defaults.</summary>
public static class KeelDefaults
{
    /// <summary>The queue a job goes to when nothing names one.</summary>
    public const string Queue = "default";
}
