using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keel;

/// <summary>What a running job knows about its own run.</summary>
public sealed class JobContext
{
    private readonly Lock _checkpointGate = new();
    private string? _checkpoint;

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

    /// <summary>The batch the job belongs to, if any: a job may add more jobs to it (<see cref="IKeelClient.AddToBatchAsync"/>).</summary>
    public long? BatchId { get; init; }

    /// <summary>
    /// This run's fencing token: the id of its claim, larger for every later claim of the same job. A system that the
    /// job writes to can refuse a write carrying a token smaller than the largest it has seen, so a run that lost its
    /// claim (a frozen process that woke up) can never overwrite the work of the run that replaced it.
    /// </summary>
    public long FencingToken { get; }

    /// <summary>
    /// Why the job's cancellation token fired, once it did: <c>cancelled</c> (someone cancelled the job:
    /// <see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>; <see cref="CancellationMessage"/> says who and why), <c>resume</c> (cancelled to resume
    /// later, <see cref="CancelOptions.Resume"/>: save a checkpoint and return — the job goes back to its queue),
    /// <c>stop</c> (its process is stopping), <c>timeout</c>, <c>lease-lost</c> (its process could not renew its lease and fenced itself),
    /// <c>pruned</c> (its process was declared dead); null while it has not fired.
    /// </summary>
    public string? CancellationReason => _cancellationReason?.Invoke();

    /// <summary>
    /// When <see cref="CancellationReason"/> is <c>cancelled</c> or <c>resume</c>: the reason given by whoever cancelled the job (the text
    /// passed to <see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>); null otherwise.
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

    /// <summary>Whether an earlier attempt of this job (or this run) saved a checkpoint.</summary>
    public bool HasCheckpoint
    {
        get
        {
            lock (_checkpointGate)
            {
                return (_checkpoint ?? InitialCheckpoint) is not null;
            }
        }
    }

    /// <summary>
    /// The state last saved with <see cref="SaveCheckpointAsync{T}"/> — by this run, or by an earlier attempt of the job
    /// that ended without finishing it (it threw, its process was killed or stopped, its claim was released) — or
    /// <c>default</c> when none was saved. Read it first thing to resume where the job got to.
    /// </summary>
    /// <typeparam name="T">The state's type, as saved.</typeparam>
    /// <returns>The state, or default.</returns>
    public T? GetCheckpoint<T>()
    {
        string? json;
        lock (_checkpointGate)
        {
            json = _checkpoint ?? InitialCheckpoint;
        }

        return json is null ? default : JsonSerializer.Deserialize<T>(json, JsonOptions);
    }

    /// <summary>
    /// Saves the job's progress so that its next attempt resumes from it (<see cref="GetCheckpoint{T}"/>), written as JSON
    /// with the job under this run's claim: refused, with <see cref="ClaimLostException"/>, once the run no longer holds
    /// it. At most <see cref="KeelOptions.MaxCheckpointBytes"/> (keep a position or a key in it, not the data). Cleared
    /// when the job finishes, fails for good or is cancelled. One database write per call: save every so many items,
    /// not after each.
    /// </summary>
    /// <typeparam name="T">The state's type.</typeparam>
    /// <param name="state">The state.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes once the checkpoint is stored.</returns>
    /// <exception cref="ArgumentException">The state is larger than the limit.</exception>
    /// <exception cref="ClaimLostException">The run no longer holds its claim: nothing was written.</exception>
    public async Task SaveCheckpointAsync<T>(T state, CancellationToken cancellationToken = default)
    {
        var json = JsonSerializer.Serialize(state, JsonOptions);
        var bytes = System.Text.Encoding.UTF8.GetByteCount(json);
        if (bytes > MaxCheckpointBytes)
        {
            throw new ArgumentException($"the checkpoint of job {JobId} ({Kind}) is {bytes} bytes as JSON; at most {MaxCheckpointBytes} are stored with a job (Keel:MaxCheckpointBytes): keep a position or a key in it, not the data", nameof(state));
        }

        if (CheckpointWriter is { } write && !await write(json, cancellationToken).ConfigureAwait(false))
        {
            throw new ClaimLostException($"job {JobId} ({Kind}): the checkpoint was not saved because this run (claim {FencingToken}) no longer holds its claim; another run may own the job now");
        }

        lock (_checkpointGate)
        {
            _checkpoint = json;
        }
    }

    /// <summary>The longest progress message kept (<see cref="ReportProgressAsync"/>).</summary>
    public const int MaxProgressMessageLength = 200;

    /// <summary>
    /// Reports how far the job got, shown while it runs by <see cref="IKeelAdmin.ListClaimsAsync"/> (<c>keel claims list</c>),
    /// <see cref="IKeelClient.GetJobAsync"/> (<c>keel jobs show</c>) and the dashboard. Written on the run's claim (a run
    /// that lost it writes nothing), coalesced: the first report is written at once, later ones at most once a second
    /// (the latest wins), so calling it in a tight loop is cheap. Advisory: a report that cannot be written is dropped.
    /// </summary>
    /// <param name="fraction">How far, from 0 (nothing done) to 1 (all done).</param>
    /// <param name="message">What it is doing, at most <see cref="MaxProgressMessageLength"/> characters; null for none.</param>
    /// <param name="cancellationToken">Cancels a write that is made now.</param>
    /// <returns>A task that completes once the report is written or queued.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> is not within [0, 1].</exception>
    /// <exception cref="ArgumentException"><paramref name="message"/> is too long.</exception>
    public Task ReportProgressAsync(double fraction, string? message = null, CancellationToken cancellationToken = default)
    {
        if (double.IsNaN(fraction) || fraction < 0 || fraction > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, $"job {JobId} ({Kind}): progress is a fraction from 0 to 1");
        }

        if (message is { Length: > MaxProgressMessageLength })
        {
            throw new ArgumentException($"job {JobId} ({Kind}): a progress message is at most {MaxProgressMessageLength} characters (this one has {message.Length})", nameof(message));
        }

        return ProgressWriter is { } write ? write(fraction, message, cancellationToken) : Task.CompletedTask;
    }

    /// <summary>
    /// A logger whose lines are kept with the job, per attempt — shown by <c>keel jobs show</c>, the dashboard's job page
    /// and <see cref="JobInfo.Logs"/> — and go to the application's own logging too. At most
    /// <see cref="KeelOptions.MaxJobLogLines"/> lines and <see cref="KeelOptions.MaxJobLogBytes"/> are kept per attempt.
    /// </summary>
    public ILogger Logger { get; internal init; } = NullLogger.Instance;

    /// <summary>
    /// Stores a small result with the job, readable as <see cref="JobInfo.Result"/> (<see cref="IKeelClient.GetJobAsync"/>)
    /// once the job has finished — or before: it is written now, under this run's claim (<see cref="ClaimLostException"/>
    /// once the run lost it). At most <see cref="KeelOptions.MaxResultBytes"/> as JSON. A later call, or a later attempt's,
    /// replaces it.
    /// </summary>
    /// <typeparam name="T">The result's type.</typeparam>
    /// <param name="result">The result.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    /// <returns>A task that completes once the result is stored.</returns>
    /// <exception cref="ArgumentException">The result is larger than the limit.</exception>
    /// <exception cref="ClaimLostException">The run no longer holds its claim: nothing was written.</exception>
    public async Task SetResultAsync<T>(T result, CancellationToken cancellationToken = default)
    {
        var json = JsonSerializer.Serialize(result, JsonOptions);
        var bytes = System.Text.Encoding.UTF8.GetByteCount(json);
        if (bytes > MaxResultBytes)
        {
            throw new ArgumentException($"the result of job {JobId} ({Kind}) is {bytes} bytes as JSON; at most {MaxResultBytes} are stored with a job (Keel:MaxResultBytes): store large output elsewhere and keep its key in the result", nameof(result));
        }

        if (ResultWriter is { } write && !await write(json, cancellationToken).ConfigureAwait(false))
        {
            throw new ClaimLostException($"job {JobId} ({Kind}): the result was not saved because this run (claim {FencingToken}) no longer holds its claim; another run may own the job now");
        }
    }

    /// <summary>Writes the result under the claim; false when it is no longer held. Null outside a worker.</summary>
    internal Func<string, CancellationToken, Task<bool>>? ResultWriter { get; init; }

    internal int MaxResultBytes { get; init; } = KeelOptions.DefaultMaxResultBytes;

    /// <summary>Reports progress for this run (coalesced); null outside a worker.</summary>
    internal Func<double, string?, CancellationToken, Task>? ProgressWriter { get; init; }

    /// <summary>The checkpoint the claim read (an earlier attempt's), as JSON.</summary>
    internal string? InitialCheckpoint { get; init; }

    /// <summary>Writes a checkpoint under the claim; false when the claim is no longer held. Null outside a worker.</summary>
    internal Func<string, CancellationToken, Task<bool>>? CheckpointWriter { get; init; }

    internal JsonSerializerOptions? JsonOptions { get; init; }

    internal int MaxCheckpointBytes { get; init; } = KeelOptions.DefaultMaxCheckpointBytes;
}
