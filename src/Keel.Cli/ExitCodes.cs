namespace Keel.Cli;

/// <summary>What the <c>keel</c> commands' exit codes mean (also listed in docs/cli.md).</summary>
public static class ExitCodes
{
    /// <summary>It worked.</summary>
    public const int Success = 0;

    /// <summary>An unexpected error (the message says what).</summary>
    public const int Failure = 1;

    /// <summary>The command line is wrong, or a confirmation was needed and not given.</summary>
    public const int Usage = 2;

    /// <summary>The configuration is invalid, or no database is configured.</summary>
    public const int InvalidConfiguration = 3;

    /// <summary>The database cannot be reached.</summary>
    public const int DatabaseUnreachable = 4;

    /// <summary>The database has no Keel schema, or one older or newer than this Keel.</summary>
    public const int SchemaMismatch = 5;

    /// <summary>The job, process, claim, task or filter matched nothing.</summary>
    public const int NotFound = 6;

    /// <summary>The database refused a write: this user may only read it (a read-only SQLite file or folder, or file system).</summary>
    public const int DatabaseReadOnly = 7;
}

/// <summary>A command found nothing to act on; becomes <see cref="ExitCodes.NotFound"/>.</summary>
internal sealed class NotFoundException(string message) : Exception(message);

/// <summary>A confirmation was needed but cannot be asked; becomes <see cref="ExitCodes.Usage"/>.</summary>
internal sealed class UsageException(string message) : Exception(message);

