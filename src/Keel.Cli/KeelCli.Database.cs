using System.CommandLine;
using Spectre.Console;

namespace Keel.Cli;

public static partial class KeelCli
{
    private static Command MigrateCommand(Io io)
    {
        var command = new Command("migrate", "Apply Keel's schema migrations to the database (safe to run twice)");
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            var before = await context.Storage.SchemaVersionAsync(ct);
            await context.Storage.MigrateAsync(ct);
            var after = context.Storage.LatestSchemaVersion;
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { engine = context.Storage.Engine, from = before, to = after });
            }
            else
            {
                await context.Out.WriteLineAsync(before == after
                    ? $"{context.Storage.Engine} database already at schema version {after}"
                    : $"{context.Storage.Engine} database migrated from schema version {before} to {after}");
            }

            return ExitCodes.Success;
        });
    }

    private static Command CheckCommand(Io io)
    {
        var command = new Command("check", "Validate the configuration and the database connection and schema (exit 3: configuration, 4: connection, 5: schema)");
        return WithAction(command, io, async (parse, context, ct) =>
        {
            var options = context.Options; // validates: throws OptionsValidationException (exit 3)
            var jobErrors = context.ValidateJobs();
            if (jobErrors.Count > 0)
            {
                await context.Error.WriteLineAsync("keel: invalid job options: " + string.Join("; ", jobErrors));
                return ExitCodes.InvalidConfiguration;
            }

            var version = await context.Storage.SchemaVersionAsync(ct); // unreachable: exit 4
            await context.RequireSchemaAsync(ct); // missing, behind or ahead: exit 5
            await context.Out.WriteLineAsync($"configuration valid ({options.EffectiveWorkers.Count} worker entries, {options.Recurring.Count} recurring tasks); {context.Storage.Engine} database reachable at schema version {version}");
            return ExitCodes.Success;
        });
    }

    private static Command StatusCommand(Io io)
    {
        var command = new Command("status", "Queues (ready, scheduled, in progress, blocked, failed, oldest ready, paused) and processes (alive, stale)");
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var queues = await context.Admin.ListQueuesAsync(ct);
            var processes = await context.Admin.ListProcessesAsync(ct);
            var threshold = context.Options.AliveThreshold;
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new
                {
                    queues = queues.Select(q => new { q.Name, q.Ready, q.Scheduled, inProgress = q.Claimed, q.Blocked, q.Failed, oldestReadyAgeSeconds = q.OldestReadyAge?.TotalSeconds, q.Paused }),
                    processes = processes.Select(p => new { p.Id, p.Name, p.Kind, p.Hostname, p.Pid, heartbeatAgeSeconds = p.HeartbeatAge.TotalSeconds, stale = p.HeartbeatAge > threshold, p.Claims }),
                });
                return ExitCodes.Success;
            }

            var queueTable = new Table().Title("Queues").AddColumns("queue", "ready", "scheduled", "in progress", "blocked", "failed", "oldest ready", "paused");
            foreach (var q in queues)
            {
                queueTable.AddRow(Markup.Escape(q.Name), q.Ready.ToString(Inv), q.Scheduled.ToString(Inv), q.Claimed.ToString(Inv), q.Blocked.ToString(Inv), q.Failed > 0 ? $"[red]{q.Failed}[/]" : "0", Durations.Format(q.OldestReadyAge), q.Paused ? "[yellow]paused[/]" : "");
            }

            var processTable = new Table().Title("Processes").AddColumns("id", "kind", "name", "host", "pid", "heartbeat", "jobs", "state");
            foreach (var p in processes)
            {
                var stale = p.HeartbeatAge > threshold;
                processTable.AddRow(p.Id.ToString(Inv), p.Kind, Markup.Escape(p.Name), Markup.Escape(p.Hostname), p.Pid.ToString(Inv), Durations.Format(p.HeartbeatAge) + " ago", p.Claims.ToString(Inv), stale ? "[red]stale[/]" : "[green]alive[/]");
            }

            context.Console.Write(queueTable);
            context.Console.Write(processTable);
            if (queues.Count == 0)
            {
                await context.Out.WriteLineAsync("no queues have jobs");
            }

            return ExitCodes.Success;
        });
    }

    private static System.Globalization.CultureInfo Inv => System.Globalization.CultureInfo.InvariantCulture;
}
