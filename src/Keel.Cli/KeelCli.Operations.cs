using System.CommandLine;
using Keel.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace Keel.Cli;

public static partial class KeelCli
{
    private static readonly Option<bool> StaleOption = new("--stale") { Description = "Only claims whose owner's heartbeat is older than the alive threshold" };
    private static readonly Option<long?> ProcessOption = new("--process") { Description = "Only claims of this process id" };

    private static Command ClaimsCommand(Io io)
    {
        var claims = new Command("claims", "Jobs in progress: list them with their owner and heartbeat age; release or fail them");
        var list = new Command("list", "List claims, oldest first");
        list.Options.Add(StaleOption);
        list.Options.Add(ProcessOption);
        list.Options.Add(JsonOption);
        claims.Subcommands.Add(WithAction(list, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var rows = await context.Admin.ListClaimsAsync(parse.GetValue(StaleOption), parse.GetValue(ProcessOption), 10_000, ct);
            var threshold = context.Options.AliveThreshold;
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { claims = rows.Select(c => new { c.ClaimId, c.JobId, c.Kind, c.Queue, c.Attempt, c.ClaimedAt, ageSeconds = c.ClaimAge.TotalSeconds, c.ProcessId, c.ProcessName, c.Hostname, c.Pid, heartbeatAgeSeconds = c.HeartbeatAge.TotalSeconds, stale = c.IsStale(threshold), c.Progress, c.ProgressMessage, c.CancelRequested }) });
                return ExitCodes.Success;
            }

            var table = new Table().AddColumns("claim", "job", "kind", "queue", "age", "progress", "process", "host", "pid", "heartbeat", "state");
            foreach (var c in rows)
            {
                var state = c.IsStale(threshold) ? "[red]stale[/]" : "[green]alive[/]";
                table.AddRow(c.ClaimId.ToString(Inv), c.JobId.ToString(Inv), Markup.Escape(c.Kind), Markup.Escape(c.Queue), Durations.Format(c.ClaimAge), Markup.Escape(ProgressText(c.Progress, c.ProgressMessage)), $"{c.ProcessId} {Markup.Escape(c.ProcessName)}", Markup.Escape(c.Hostname), c.Pid.ToString(Inv), Durations.Format(c.HeartbeatAge) + " ago", c.CancelRequested is null ? state : state + " [yellow]cancelling[/]");
            }

            context.Console.Write(table);
            await context.Out.WriteLineAsync($"{rows.Count} claims");
            return ExitCodes.Success;
        }));
        claims.Subcommands.Add(ClaimsActionCommand(io, "release", "Put claims back to ready (the interrupted run is not counted)", fail: false));
        claims.Subcommands.Add(ClaimsActionCommand(io, "fail", "Fail the claimed jobs with a WorkerLostException", fail: true));
        return claims;
    }

    private static Command ClaimsActionCommand(Io io, string name, string description, bool fail)
    {
        var command = new Command(name, description);
        var ids = new Argument<long[]>("ids") { Description = "Claim ids", Arity = ArgumentArity.ZeroOrMore };
        var reason = new Option<string>("--reason") { Description = "Why (recorded with each failed job)", DefaultValueFactory = _ => "by the keel command line" };
        command.Arguments.Add(ids);
        command.Options.Add(StaleOption);
        command.Options.Add(ProcessOption);
        command.Options.Add(YesOption);
        command.Options.Add(JsonOption);
        if (fail)
        {
            command.Options.Add(reason);
        }

        return WithAction(command, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var chosen = parse.GetValue(ids) ?? [];
            var stale = parse.GetValue(StaleOption);
            var process = parse.GetValue(ProcessOption);
            if (chosen.Length == 0 && !stale && process is null)
            {
                throw new UsageException($"name the claims to {name}, or pass --stale or --process ID");
            }

            if (chosen.Length == 0)
            {
                chosen = [.. (await context.Admin.ListClaimsAsync(stale, process, 100_000, ct)).Select(c => c.ClaimId)];
                if (chosen.Length == 0)
                {
                    throw new NotFoundException(stale ? "no stale claim" : $"process {process} holds no claim");
                }

                await ConfirmAsync(parse, context, $"{(fail ? "Fail" : "Release")} {chosen.Length} claims?");
            }

            var result = fail
                ? await context.Admin.FailClaimsAsync(chosen, parse.GetValue(reason)!, ct)
                : await context.Admin.ReleaseClaimsAsync(chosen, ct);
            if (result.Total == 0)
            {
                throw new NotFoundException("none of those claims exists any more");
            }

            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { action = name, released = result.Released, failed = result.Failed });
            }
            else
            {
                await context.Out.WriteLineAsync(fail ? $"failed {result.Failed} claimed jobs" : $"released {result.Released} claimed jobs back to ready");
            }

            return ExitCodes.Success;
        });
    }

    private static Command ProcessesCommand(Io io)
    {
        var processes = new Command("processes", "Registered worker, dispatcher, scheduler and supervisor processes");
        var list = new Command("list", "List processes with their heartbeat age");
        list.Options.Add(JsonOption);
        processes.Subcommands.Add(WithAction(list, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var rows = await context.Admin.ListProcessesAsync(ct);
            var threshold = context.Options.AliveThreshold;
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { processes = rows.Select(p => new { p.Id, p.Name, p.Kind, p.Hostname, p.Pid, p.SupervisorId, p.LastHeartbeatAt, heartbeatAgeSeconds = p.HeartbeatAge.TotalSeconds, stale = p.HeartbeatAge > threshold, p.Claims, p.Metadata }) });
                return ExitCodes.Success;
            }

            var table = new Table().AddColumns("id", "kind", "name", "host", "pid", "supervisor", "heartbeat", "jobs", "state");
            foreach (var p in rows)
            {
                table.AddRow(p.Id.ToString(Inv), p.Kind, Markup.Escape(p.Name), Markup.Escape(p.Hostname), p.Pid.ToString(Inv), p.SupervisorId?.ToString(Inv) ?? "", Durations.Format(p.HeartbeatAge) + " ago", p.Claims.ToString(Inv), p.HeartbeatAge > threshold ? "[red]stale[/]" : "[green]alive[/]");
            }

            context.Console.Write(table);
            return ExitCodes.Success;
        }));
        var prune = new Command("prune", "Prune a process now and recover its claims under each job's worker-lost policy");
        var id = new Argument<long>("id") { Description = "The process id" };
        prune.Arguments.Add(id);
        prune.Options.Add(JsonOption);
        processes.Subcommands.Add(WithAction(prune, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var result = await context.Admin.PruneProcessAsync(parse.GetValue(id), ct) ?? throw new NotFoundException($"there is no process {parse.GetValue(id)}");
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { process = parse.GetValue(id), result.Retried, result.Failed, result.Released });
            }
            else
            {
                await context.Out.WriteLineAsync($"pruned process {parse.GetValue(id)}: {result.Retried} jobs back to ready as an attempt, {result.Failed} failed, {result.Released} back to ready uncharged (they shared the process: a second such death makes each run alone)");
            }

            return ExitCodes.Success;
        }));
        return processes;
    }

    private static Command QueuesCommand(Io io)
    {
        var queues = new Command("queues", "List, pause, resume or clear queues");
        var list = new Command("list", "Every known queue (with jobs in any state, configured, or paused): counts, oldest ready, paused");
        list.Options.Add(JsonOption);
        queues.Subcommands.Add(WithAction(list, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var rows = await context.Admin.ListQueuesAsync(ct);
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { queues = rows.Select(q => new { q.Name, q.Ready, q.Scheduled, inProgress = q.Claimed, q.Blocked, q.Failed, oldestReadyAgeSeconds = q.OldestReadyAge?.TotalSeconds, q.Paused }) });
                return ExitCodes.Success;
            }

            var table = new Table().AddColumns("queue", "ready", "scheduled", "in progress", "blocked", "failed", "oldest ready", "paused");
            foreach (var q in rows)
            {
                table.AddRow(Markup.Escape(q.Name), q.Ready.ToString(Inv), q.Scheduled.ToString(Inv), q.Claimed.ToString(Inv), q.Blocked.ToString(Inv), q.Failed > 0 ? $"[red]{q.Failed}[/]" : "0", Durations.Format(q.OldestReadyAge), q.Paused ? "[yellow]paused[/]" : "");
            }

            context.Console.Write(table);
            await context.Out.WriteLineAsync(rows.Count == 0 ? "no queue is known yet: none has had a job or a pause" : $"{rows.Count} {(rows.Count == 1 ? "queue" : "queues")}");
            return ExitCodes.Success;
        }));

        var force = new Option<bool>("--force") { Description = "Pause it even though no job, worker or job kind uses it yet (pausing in advance)" };
        foreach (var (verb, description) in new[] { ("pause", "Pause a queue: its jobs stay, workers skip it"), ("resume", "Resume a paused queue"), ("clear", "Discard every ready job of a queue") })
        {
            var command = new Command(verb, description);
            var name = new Argument<string>("name") { Description = "The queue name" };
            command.Arguments.Add(name);
            command.Options.Add(JsonOption);
            if (verb == "clear")
            {
                command.Options.Add(YesOption);
            }

            if (verb == "pause")
            {
                command.Options.Add(force);
            }

            queues.Subcommands.Add(WithAction(command, io, async (parse, context, ct) =>
            {
                await context.RequireSchemaAsync(ct);
                var queue = parse.GetValue(name)!;
                long count = 0;
                switch (verb)
                {
                    case "pause":
                        // A typo would otherwise create a paused queue nobody uses, and leave the real one running.
                        if (!parse.GetValue(force) && !(await KnownQueuesAsync(context, ct)).Contains(queue))
                        {
                            var known = await KnownQueuesAsync(context, ct);
                            var hint = KeelConfigurationCheck.Closest(queue, known) is { } close ? $" (did you mean '{close}'?)" : known.Count > 0 ? $" (known: {string.Join(", ", known.Order(StringComparer.Ordinal).Take(20))})" : string.Empty;
                            throw new NotFoundException($"queue '{queue}' is unknown: no job has used it and no worker or job kind names it{hint}; pass --force to pause it in advance");
                        }

                        await context.Admin.PauseQueueAsync(queue, ct);
                        break;
                    case "resume":
                        await context.Admin.ResumeQueueAsync(queue, ct);
                        break;
                    default:
                        await ConfirmAsync(parse, context, $"Discard every ready job of queue '{queue}'?");
                        count = await context.Admin.ClearQueueAsync(queue, ct);
                        break;
                }

                if (parse.GetValue(JsonOption))
                {
                    context.WriteJson(new { queue, action = verb, discarded = count });
                }
                else
                {
                    await context.Out.WriteLineAsync(verb == "clear" ? $"discarded {count} ready jobs of queue '{queue}'" : $"queue '{queue}' {verb}d");
                }

                return ExitCodes.Success;
            }));
        }

        return queues;
    }

    /// <summary>Queues that exist for Keel: in the database (any job, or a pause), named by a worker entry, a job kind or a recurring task.</summary>
    private static async Task<HashSet<string>> KnownQueuesAsync(CliContext context, CancellationToken cancellationToken)
    {
        var known = (await context.Admin.ListQueuesAsync(cancellationToken)).Select(q => q.Name).ToHashSet(StringComparer.Ordinal);
        var options = context.Options;
        known.UnionWith(options.Workers.SelectMany(w => w.Queues).Where(q => !q.Contains('*', StringComparison.Ordinal)));
        known.UnionWith(context.Services.GetRequiredService<Registry.JobRegistry>().All.Select(d => d.Options.Queue));
        known.UnionWith(options.Recurring.Values.Select(t => t.Queue).OfType<string>());
        return known;
    }

    private static Command RecurringCommand(Io io)
    {
        var recurring = new Command("recurring", "Recurring tasks");
        var list = new Command("list", "List recurring tasks with their schedule and last and next run");
        list.Options.Add(JsonOption);
        recurring.Subcommands.Add(WithAction(list, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var tasks = await context.Recurring.ListAsync(ct);
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { tasks });
                return ExitCodes.Success;
            }

            var table = new Table().AddColumns("key", "kind", "schedule", "time zone", "last run", "next run");
            foreach (var t in tasks)
            {
                table.AddRow(Markup.Escape(t.Task.Key), Markup.Escape(t.Task.Kind), Markup.Escape(t.Task.Schedule), Markup.Escape(t.Task.TimeZone ?? "UTC"), t.LastRunAt?.ToString("u", Inv) ?? "never", t.NextRunAt?.ToString("u", Inv) ?? "-");
            }

            context.Console.Write(table);
            return ExitCodes.Success;
        }));
        var run = new Command("run", "Enqueue a recurring task's job now");
        var key = new Argument<string>("key") { Description = "The task key" };
        run.Arguments.Add(key);
        run.Options.Add(JsonOption);
        recurring.Subcommands.Add(WithAction(run, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            long jobId;
            try
            {
                jobId = await context.Recurring.RunNowAsync(parse.GetValue(key)!, ct);
            }
            catch (InvalidOperationException e) when (e.Message.Contains("no recurring task", StringComparison.Ordinal))
            {
                throw new NotFoundException(e.Message);
            }

            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { task = parse.GetValue(key), jobId });
            }
            else
            {
                await context.Out.WriteLineAsync($"enqueued job {jobId} for recurring task '{parse.GetValue(key)}'");
            }

            return ExitCodes.Success;
        }));
        return recurring;
    }
}
