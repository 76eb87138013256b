namespace Keel;

/// <summary>What a running job knows about its own run.</summary>
public sealed class JobContext
{
    private readonly Func<CancellationToken, Task<bool>>? _claimCheck;
    private readonly Func<string?>? _cancellationReason;
    private readonly Func<string?>? _cancellationMessage;

    internal JobContext(long jobId, string kind, string queue, int attempt, int maxAttempts, DateTimeOffset enqueuedAt)
    {
        JobId = jobId;
        Kind = kind;
        Queue = queue;
        Attempt = attempt;
        MaxAttempts = maxAttempts;
        EnqueuedAt = enqueuedAt;
    }

    internal JobContext(long jobId, string kind, string queue, int attempt, int maxAttempts, DateTimeOffset enqueuedAt, long fencingToken, Func<CancellationToken, Task<bool>>? claimCheck, Func<string?>? cancellationReason, Func<string?>? cancellationMessage = null)
        : this(jobId, kind, queue, attempt, maxAttempts, enqueuedAt)
    {
        FencingToken = fencingToken;
        _claimCheck = claimCheck;
        _cancellationReason = cancellationReason;
        _cancellationMessage = cancellationMessage;
    }

    /// <summary>The job's id.</summary>
    public long JobId { get; }

    /// <summary>The stable kind name the job is stored under.</summary>
    public string Kind { get; }

    /// <summary>The queue the job was claimed from.</summary>
    public string Queue { get; }

    /// <summary>The attempt number of this run, starting at 1.</summary>
    public int Attempt { get; }

    /// <summary>How many attempts the job may use before it fails for good.</summary>
    public int MaxAttempts { get; }

    /// <summary>When the job was enqueued.</summary>
    public DateTimeOffset EnqueuedAt { get; }

    /// <summary>
    /// This run's fencing token: the id of its claim, larger for every later claim of the same job. A system that the
    /// job writes to can refuse a write carrying a token smaller than the largest it has seen, so a run that lost its
    /// claim (a frozen process that woke up) can never overwrite the work of the run that replaced it.
    /// </summary>
    public long FencingToken { get; }

    /// <summary>
    /// Why the job's cancellation token fired, once it did: <c>cancelled</c> (someone cancelled the job:
    /// <see cref="IKeelAdmin.CancelAsync"/>; <see cref="CancellationMessage"/> says who and why), <c>stop</c> (its process
    /// is stopping), <c>timeout</c>, <c>lease-lost</c> (its process could not renew its lease and fenced itself),
    /// <c>pruned</c> (its process was declared dead); null while it has not fired.
    /// </summary>
    public string? CancellationReason => _cancellationReason?.Invoke();

    /// <summary>
    /// When <see cref="CancellationReason"/> is <c>cancelled</c>: the reason given by whoever cancelled the job (the text
    /// passed to <see cref="IKeelAdmin.CancelAsync"/>); null otherwise.
    /// </summary>
    public string? CancellationMessage => _cancellationMessage?.Invoke();

    /// <summary>
    /// Asks the database whether this run still holds its claim under a lease that has not expired: what to check just
    /// before an external side effect that cannot be fenced with <see cref="FencingToken"/>. False means another process
    /// may already be running the job: do not perform the side effect. True is a statement about now, not a guarantee
    /// about the future; the lease it saw still runs for a while (the process's alive threshold, minus a third).
    /// </summary>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>Whether the claim is still held.</returns>
    public Task<bool> IsClaimHeldAsync(CancellationToken cancellationToken = default)
        => _claimCheck is null ? Task.FromResult(true) : _claimCheck(cancellationToken);
}
