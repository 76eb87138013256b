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

/// <summary>
/// Start-up gave up: the database stayed unreachable for <see cref="KeelOptions.StartupTimeout"/>. The message says
/// which database, how long it was tried and the last error; the inner exception is that error.
/// </summary>
public sealed class KeelStartupException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeelStartupException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What could not be reached, for how long, and why.</param>
    public KeelStartupException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What could not be reached, for how long, and why.</param>
    /// <param name="innerException">The last error.</param>
    public KeelStartupException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The database refused a write because this process may only read it: a SQLite file or folder without write
/// permission for this user, or a read-only file system. The message names the file or folder; reading still works.
/// </summary>
public sealed class KeelDatabaseReadOnlyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KeelDatabaseReadOnlyException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is read-only and what would fix it.</param>
    public KeelDatabaseReadOnlyException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is read-only and what would fix it.</param>
    /// <param name="innerException">The database's own error.</param>
    public KeelDatabaseReadOnlyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// A database setting (<c>Keel:Database</c>, <c>--database</c>) Keel cannot open: empty, ambiguous, of no known form,
/// for an engine whose package is not registered, or refused by its engine. The message names the setting and what to
/// write instead.
/// </summary>
public sealed class KeelDatabaseSettingException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public KeelDatabaseSettingException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to write.</param>
    public KeelDatabaseSettingException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong and what to write.</param>
    /// <param name="innerException">The engine's own error.</param>
    public KeelDatabaseSettingException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
