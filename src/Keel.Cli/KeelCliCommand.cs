using System.CommandLine;

namespace Keel.Cli;

/// <summary>
/// Builds a command that another package adds to the <c>keel</c> command line — e.g. <c>keel dashboard</c> from
/// Keel.Dashboard, which this package cannot reference because it stays free of ASP.NET Core.
/// </summary>
/// <param name="context">Runs the command against the application's Keel services.</param>
/// <returns>The command, with its options and action.</returns>
public delegate Command KeelCliCommand(KeelCliCommandContext context);

/// <summary>What an added command runs against: the same application, database and output as the built-in commands.</summary>
public sealed class KeelCliCommandContext
{
    private readonly Func<ParseResult, Func<IServiceProvider, TextWriter, CancellationToken, Task<int>>, CancellationToken, Task<int>> _run;

    internal KeelCliCommandContext(Func<ParseResult, Func<IServiceProvider, TextWriter, CancellationToken, Task<int>>, CancellationToken, Task<int>> run) => _run = run;

    /// <summary>
    /// Runs <paramref name="action"/> with the application's services — built from its configuration and the database
    /// given by <c>--database</c>, <c>KEEL_DATABASE</c> or <c>Keel:Database</c>, never started — and turns a failure
    /// into one line on standard error and a documented exit code (<see cref="ExitCodes"/>).
    /// </summary>
    /// <param name="parse">The parsed command line (for <c>--database</c>).</param>
    /// <param name="action">The command's work: gets the services, standard output and the cancellation token; returns the exit code.</param>
    /// <param name="cancellationToken">Cancels the command (Ctrl+C).</param>
    /// <returns>The exit code.</returns>
    public Task<int> RunAsync(ParseResult parse, Func<IServiceProvider, TextWriter, CancellationToken, Task<int>> action, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(action);
        return _run(parse, action, cancellationToken);
    }
}
