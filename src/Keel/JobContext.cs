namespace Keel;

/// <summary>What a running job knows about its own run.</summary>
public sealed class JobContext
{
    internal JobContext(long jobId, string kind, string queue, int attempt, int maxAttempts, DateTimeOffset enqueuedAt)
    {
        JobId = jobId;
        Kind = kind;
        Queue = queue;
        Attempt = attempt;
        MaxAttempts = maxAttempts;
        EnqueuedAt = enqueuedAt;
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
}
