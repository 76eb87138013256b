namespace Keel;

/// <summary>A job's stored arguments could not be turned into its arguments type. Retrying cannot help.</summary>
public sealed class JobArgumentsException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JobArgumentsException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What did not deserialize.</param>
    public JobArgumentsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What did not deserialize.</param>
    /// <param name="innerException">The serializer's error.</param>
    public JobArgumentsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A claimed job's kind is not registered in this application. Retrying here cannot help.</summary>
public sealed class UnknownJobKindException : Exception
{
    /// <summary>Creates the exception.</summary>
    public UnknownJobKindException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which kind.</param>
    public UnknownJobKindException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which kind.</param>
    /// <param name="innerException">The cause.</param>
    public UnknownJobKindException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>A run took longer than its kind's <see cref="JobOptions.Timeout"/>; its token was cancelled.</summary>
public sealed class JobTimeoutException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JobTimeoutException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which job and limit.</param>
    public JobTimeoutException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which job and limit.</param>
    /// <param name="innerException">The cancellation the job threw.</param>
    public JobTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The worker running a job was lost (process exited or was killed, heartbeat expired, database session ended,
/// process missing). Keel records this as the job's error when recovery fails it; the message names the cause.
/// </summary>
public sealed class WorkerLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WorkerLostException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The cause.</param>
    public WorkerLostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The cause.</param>
    /// <param name="innerException">The underlying error.</param>
    public WorkerLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Jobs were added to a batch that has completed (its callbacks were enqueued), or that does not exist.</summary>
public sealed class KeelBatchClosedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeelBatchClosedException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which batch.</param>
    public KeelBatchClosedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which batch.</param>
    /// <param name="innerException">The cause.</param>
    public KeelBatchClosedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A write under a run's claim (<see cref="JobContext.SaveCheckpointAsync{T}"/>) was refused because the run no longer
/// holds its claim: its process was declared dead or released it, and another run may own the job now. Nothing was
/// written; the run should stop.
/// </summary>
public sealed class ClaimLostException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ClaimLostException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which job and claim.</param>
    public ClaimLostException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Which job and claim.</param>
    /// <param name="innerException">The cause.</param>
    public ClaimLostException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
