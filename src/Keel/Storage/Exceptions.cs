namespace Keel.Storage;

/// <summary>The database's schema does not fit this code: missing, too old, or newer than the code.</summary>
public sealed class KeelSchemaException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeelSchemaException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    public KeelSchemaException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to do.</param>
    /// <param name="innerException">The cause.</param>
    public KeelSchemaException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The calling process's row is gone: it was pruned as dead. The process must stop claiming, cancel its
/// jobs and exit (or register anew); whatever it held has been or will be recovered by someone else.
/// </summary>
public sealed class ProcessGoneException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProcessGoneException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public ProcessGoneException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ProcessGoneException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
