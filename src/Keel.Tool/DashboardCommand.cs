using System.CommandLine;
using Keel.Cli;
using Keel.Dashboard;

namespace Keel.Tool;

/// <summary>
/// <c>keel dashboard</c>: serves the dashboard for the database given by <c>--database</c>. It lives in the tool, the
/// one place that has both the command line (Keel.Cli) and the dashboard (ASP.NET Core); an application adds it to its
/// own command line with the same few lines (docs/dashboard.md).
/// </summary>
internal static class DashboardCommand
{
    /// <summary>Builds the <c>dashboard</c> command.</summary>
    /// <param name="context">Runs it against the application's Keel services.</param>
    /// <returns>The command.</returns>
    public static Command Create(KeelCliCommandContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var urls = new Option<string>("--urls") { Description = "Where to listen; requests from other machines are refused", DefaultValueFactory = _ => KeelDashboardServer.DefaultUrls };
        var readOnly = new Option<bool>("--read-only") { Description = "Show everything, change nothing: no action buttons, every POST refused" };
        var keys = new Option<string?>("--keys-folder") { Description = "Keep the antiforgery keys in this folder, so forms stay valid across restarts (default: in memory; nothing is written)" };
        var command = new Command("dashboard", "Serve the web dashboard for this database (jobs, queues, processes, recurring tasks; retry, discard, pause…)");
        command.Options.Add(urls);
        command.Options.Add(readOnly);
        command.Options.Add(keys);
        command.SetAction((parse, ct) => context.RunAsync(
            parse,
            async (services, output, token) =>
            {
                var isReadOnly = parse.GetValue(readOnly);
                await KeelDashboardServer.RunAsync(services, parse.GetValue(urls) ?? KeelDashboardServer.DefaultUrls, output, o => o.ReadOnly = isReadOnly, parse.GetValue(keys), token);
                return ExitCodes.Success;
            },
            ct));
        return command;
    }
}
