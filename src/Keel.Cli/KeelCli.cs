using System.CommandLine;
using Microsoft.Extensions.Hosting;

namespace Keel.Cli;

/// <summary>
/// The <c>keel</c> commands — migrate, check, status, jobs, claims, processes, queues, recurring, demo — shared by
/// the <c>keel</c> tool and <c>KeelApp.RunAsync</c> in your own program.
/// </summary>
public static partial class KeelCli
{
    private static readonly Option<string?> DatabaseOption = new("--database", "-d")
    {
        Description = "A SQLite file path or a PostgreSQL connection string (default: KEEL_DATABASE, then Keel:Database in appsettings.json)",
        Recursive = true,
    };

    private static readonly Option<bool> JsonOption = new("--json") { Description = "Write JSON for scripts instead of tables" };

    private static readonly Option<bool> YesOption = new("--yes", "-y") { Description = "Do not ask for confirmation" };

    /// <summary>Runs a <c>keel</c> command line; returns the exit code (see <see cref="ExitCodes"/>).</summary>
    /// <param name="args">The arguments, e.g. <c>jobs list --state failed</c>.</param>
    /// <param name="configure">Configures the application (job kinds, store); the same callback the application's host uses.</param>
    /// <param name="output">Standard output; the console when null.</param>
    /// <param name="error">Standard error; the console when null.</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    /// <returns>The exit code.</returns>
    public static Task<int> RunAsync(string[] args, Action<HostApplicationBuilder> configure, TextWriter? output = null, TextWriter? error = null, CancellationToken cancellationToken = default)
        => RunAsync(args, configure, [], output, error, cancellationToken);

    /// <summary>Runs a <c>keel</c> command line with commands added by other packages; returns the exit code.</summary>
    /// <param name="args">The arguments, e.g. <c>dashboard --urls http://127.0.0.1:5005</c>.</param>
    /// <param name="configure">Configures the application (job kinds, store); the same callback the application's host uses.</param>
    /// <param name="commands">Extra commands, e.g. <c>KeelDashboardCommand.Create</c> from Keel.Dashboard.</param>
    /// <param name="output">Standard output; the console when null.</param>
    /// <param name="error">Standard error; the console when null.</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string[] args, Action<HostApplicationBuilder> configure, IReadOnlyList<KeelCliCommand> commands, TextWriter? output = null, TextWriter? error = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(commands);
        var io = new Io(output ?? Console.Out, error ?? Console.Error, configure);
        var root = new RootCommand("keel: run, inspect and repair a Keel job database");
        root.Options.Add(DatabaseOption);
        root.Subcommands.Add(new Command("start", "Run the supervisor with its worker, dispatcher and scheduler processes (process mode)"));
        root.Subcommands.Add(MigrateCommand(io));
        root.Subcommands.Add(CheckCommand(io));
        root.Subcommands.Add(StatusCommand(io));
        root.Subcommands.Add(JobsCommand(io));
        root.Subcommands.Add(BatchesCommand(io));
        root.Subcommands.Add(ClaimsCommand(io));
        root.Subcommands.Add(ProcessesCommand(io));
        root.Subcommands.Add(QueuesCommand(io));
        root.Subcommands.Add(RecurringCommand(io));
        root.Subcommands.Add(DemoCommand(io));
        var context = new KeelCliCommandContext((parse, action, ct) => io.RunAsync(parse, cli => action(cli.Services, cli.Out, ct)));
        foreach (var command in commands)
        {
            root.Subcommands.Add(command(context));
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // "keel nosuch": the unrecognized word is the error; "Required command was not provided" only follows from it.
            var errors = parse.UnmatchedTokens.Count > 0 && parse.Errors.Count > 1
                ? parse.Errors.Where(e => !e.Message.StartsWith("Required command", StringComparison.Ordinal)).ToList()
                : [.. parse.Errors];
            foreach (var parseError in errors)
            {
                await io.Error.WriteLineAsync("keel: " + parseError.Message);
            }

            await io.Error.WriteLineAsync("keel: see 'keel --help'");
            return ExitCodes.Usage;
        }

        var invocation = new InvocationConfiguration { Output = io.Output, Error = io.Error };
        return await parse.InvokeAsync(invocation, cancellationToken);
    }

    /// <summary>The writers and the application a command runs against.</summary>
    private sealed record Io(TextWriter Output, TextWriter Error, Action<HostApplicationBuilder> Configure)
    {
        public Task<int> RunAsync(ParseResult parse, Func<CliContext, Task<int>> command)
            => CliContext.RunAsync(parse.GetValue(DatabaseOption), Configure, Output, Error, command);
    }

    private static Command WithAction(Command command, Io io, Func<ParseResult, CliContext, CancellationToken, Task<int>> action)
    {
        command.SetAction((parse, ct) => io.RunAsync(parse, context => action(parse, context, ct)));
        return command;
    }

    /// <summary>Asks "question [y/N]" unless --yes was given; refuses when there is nobody to ask.</summary>
    private static async Task ConfirmAsync(ParseResult parse, CliContext context, string question)
    {
        if (parse.GetValue(YesOption))
        {
            return;
        }

        if (System.Console.IsInputRedirected)
        {
            throw new UsageException($"{question} — confirmation needed: pass --yes");
        }

        await context.Out.WriteAsync($"{question} [y/N] ");
        var answer = System.Console.ReadLine();
        if (!string.Equals(answer?.Trim(), "y", StringComparison.OrdinalIgnoreCase) && !string.Equals(answer?.Trim(), "yes", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException("not confirmed; nothing was changed");
        }
    }
}
