using System.CommandLine;
using Keel.Storage;
using Spectre.Console;

namespace Keel.Cli;

public static partial class KeelCli
{
    private static readonly Option<string?> StateOption = new("--state") { Description = "ready, scheduled, blocked, claimed (in progress), failed, finished, discarded or awaiting" };
    private static readonly Option<string?> QueueOption = new("--queue") { Description = "Only this queue" };
    private static readonly Option<string?> KindOption = new("--kind") { Description = "Only this job kind" };
    private static readonly Option<string?> ErrorTypeOption = new("--error-type") { Description = "Only failed jobs whose last exception has this type (full name)" };
    private static readonly Option<string?> OlderThanOption = new("--older-than") { Description = "Only jobs enqueued (or, with --error-type/failed, failed) longer ago than this: 90s, 15m, 2h, 7d" };
    private static readonly Option<string?> NewerThanOption = new("--newer-than") { Description = "Only jobs enqueued (or failed) more recently than this" };

    private static Command JobsCommand(Io io)
    {
        var jobs = new Command("jobs", "List, show, cancel, retry and discard jobs");
        jobs.Subcommands.Add(JobsListCommand(io));
        jobs.Subcommands.Add(JobsShowCommand(io));
        jobs.Subcommands.Add(JobsCancelCommand(io));
        jobs.Subcommands.Add(JobsBulkCommand(io, "retry", "Retry failed jobs: the given ids, or --all matching the filters", retry: true));
        jobs.Subcommands.Add(JobsBulkCommand(io, "discard", "Discard ready, scheduled, blocked or failed jobs: the given ids, or --all matching the filters", retry: false));
        return jobs;
    }

    private static void AddFilters(Command command)
    {
        command.Options.Add(QueueOption);
        command.Options.Add(KindOption);
        command.Options.Add(ErrorTypeOption);
        command.Options.Add(OlderThanOption);
        command.Options.Add(NewerThanOption);
    }

    private static JobState? ParseState(string? text)
    {
        if (text is null)
        {
            return null;
        }

        var normalized = text.Trim().Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToUpperInvariant();
        if (normalized is "INPROGRESS" or "RUNNING")
        {
            return JobState.Claimed;
        }

        return Enum.TryParse<JobState>(normalized, ignoreCase: true, out var state) && Enum.IsDefined(state)
            ? state
            : throw new UsageException($"'{text}' is not a job state: use ready, scheduled, blocked, claimed, failed, finished, discarded or awaiting");
    }

    private static Command JobsListCommand(Io io)
    {
        var command = new Command("list", "List jobs, newest first");
        command.Options.Add(StateOption);
        AddFilters(command);
        var paging = new Paging(command, "job", "jobs");
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            var size = paging.Size(parse);
            await context.RequireSchemaAsync(ct);
            var state = ParseState(parse.GetValue(StateOption));
            var now = DateTimeOffset.UtcNow;
            var older = parse.GetValue(OlderThanOption) is { } o ? now - Durations.Parse(o) : (DateTimeOffset?)null;
            var newer = parse.GetValue(NewerThanOption) is { } n ? now - Durations.Parse(n) : (DateTimeOffset?)null;
            var filter = new JobFilter(parse.GetValue(QueueOption), parse.GetValue(KindOption), parse.GetValue(ErrorTypeOption));
            // One more than a page, to know whether there is a next page at all.
            var (page, next) = Paging.Cut(await context.Storage.JobsListAsync(new JobsListParams(state, filter, older, newer, paging.Before(parse), size + 1), ct), size, j => j.Id);
            // The same exit code whatever the format: "no job matches" is 6 for a script reading JSON too.
            var code = page.Count == 0 ? ExitCodes.NotFound : ExitCodes.Success;
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { jobs = page, next });
                return code;
            }

            if (page.Count == 0)
            {
                await context.Error.WriteLineAsync("keel: no job matches");
                return code;
            }

            var table = new Table().AddColumns("id", "state", "kind", "queue", "attempts", "enqueued", "last error");
            foreach (var job in page)
            {
                table.AddRow(job.Id.ToString(Inv), StateMarkup(job.State), Markup.Escape(job.Kind), Markup.Escape(job.Queue), job.Attempts.ToString(Inv), job.CreatedAt.ToString("u", Inv), Markup.Escape(job.ErrorType is null ? "" : $"{job.ErrorType}: {Truncate(job.ErrorMessage, 60)}"));
            }

            context.Console.Write(table);
            await context.Out.WriteLineAsync(paging.Footer(page.Count, next));
            return ExitCodes.Success;
        });
    }

    private static Command JobsShowCommand(Io io)
    {
        var command = new Command("show", "Show one job: arguments, attempts, errors with stack traces, timeline");
        var id = new Argument<long>("id") { Description = "The job id" };
        command.Arguments.Add(id);
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var job = await context.Client.GetJobAsync(parse.GetValue(id), ct) ?? throw new NotFoundException($"there is no job {parse.GetValue(id)}");
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(job); // with every error's cause code and the timeline
                return ExitCodes.Success;
            }

            var grid = new Grid().AddColumn().AddColumn();
            grid.AddRow("job", job.Id.ToString(Inv));
            grid.AddRow("state", StateMarkup(job.State));
            grid.AddRow("kind", Markup.Escape(job.Kind));
            grid.AddRow("queue", Markup.Escape(job.Queue));
            grid.AddRow("priority", job.Priority.ToString(Inv));
            grid.AddRow("attempts", $"{job.Attempts} of {job.MaxAttempts} (lost workers: {job.WorkerLosses}, uncharged shared deaths: {job.SharedLosses})");
            grid.AddRow("arguments", Markup.Escape(job.Args));
            if (job.ClaimedByProcessId is { } owner)
            {
                grid.AddRow("running on", $"process {owner} since {job.ClaimedAt:u}");
                if (job.Progress is not null)
                {
                    grid.AddRow("progress", Markup.Escape(ProgressText(job.Progress, job.ProgressMessage)));
                }

                if (job.CancelRequested is { } cancel)
                {
                    grid.AddRow("cancelling", Markup.Escape(cancel));
                }
            }

            if (job.BatchId is { } batch)
            {
                grid.AddRow("batch", $"{batch} (keel batches show {batch})");
            }

            if (job.Suspect)
            {
                grid.AddRow("suspect", "yes: it was running when its process died, twice beside other jobs or once alone, so it runs alone until a run of it ends by itself");
            }

            context.Console.Write(grid);
            WriteDependencies(context, "parents (this job waits for)", job.Parents, d => d.ParentId);
            WriteDependencies(context, "children (wait for this job)", job.Children, d => d.ChildId);
            if (job.Runs.Count > 0)
            {
                // Every run: who ran it, how it ended, whether it counted — what "ran twice?" questions need.
                var runs = new Table().AddColumns("attempt", "outcome", "cause", "charged", "process", "pid", "host", "started", "ended", "shared with");
                foreach (var run in job.Runs)
                {
                    runs.AddRow(
                        run.Attempt.ToString(Inv),
                        Markup.Escape(run.Outcome),
                        Markup.Escape(run.Cause ?? string.Empty),
                        run.Charged ? "yes" : "no",
                        Markup.Escape(run.Runner?.Name ?? string.Empty),
                        run.Runner?.Pid.ToString(Inv) ?? string.Empty,
                        Markup.Escape(run.Runner?.Host ?? string.Empty),
                        run.StartedAt?.ToString("u", Inv) ?? string.Empty,
                        run.EndedAt?.ToString("u", Inv) ?? string.Empty,
                        string.Join(' ', run.SharedWith.Select(j => j.ToString(Inv))));
                }

                context.Console.Write(runs);
            }

            await context.Out.WriteLineAsync();
            foreach (var entry in job.Timeline)
            {
                var message = entry.Event == "failed" && job.Errors.FirstOrDefault(e => e.OccurredAt == entry.At) is { } failure ? ": " + failure.Message : string.Empty;
                await context.Out.WriteLineAsync($"  {entry.At:u}  {entry.Description}{message}");
            }

            foreach (var error in job.Errors.Where(e => e.StackTrace is not null))
            {
                await context.Out.WriteLineAsync($"\nattempt {error.Attempt}: {error.ExceptionType}\n{error.StackTrace}");
            }

            if (job.Logs.Count > 0)
            {
                await context.Out.WriteLineAsync("\nlog:");
                foreach (var line in job.Logs)
                {
                    await context.Out.WriteLineAsync($"  attempt {line.Attempt}  {line.At:u}  {line.Level,-11}  {line.Message}");
                }
            }

            if (job.Result is { } result)
            {
                await context.Out.WriteLineAsync($"\nresult: {result}");
            }

            return ExitCodes.Success;
        });
    }

    /// <summary>A job's edges: the other job, what the edge waits for, its policy, how it settled.</summary>
    private static void WriteDependencies(CliContext context, string title, IReadOnlyList<JobDependencyInfo> edges, Func<JobDependencyInfo, long> other)
    {
        if (edges.Count == 0)
        {
            return;
        }

        var table = new Table().Title(title).AddColumns("job", "waits for", "otherwise", "parent settled");
        foreach (var edge in edges)
        {
            table.AddRow(
                other(edge).ToString(Inv),
                Markup.Escape(edge.When.ToString()),
                edge.OnUnmet == UnmetPolicy.Run ? "run anyway" : "discard",
                Markup.Escape(edge.Outcome?.ToString() ?? "not yet"));
        }

        context.Console.Write(table);
    }

    /// <summary>A run's progress as text: a bar, the percentage and its message.</summary>
    internal static string ProgressText(double? fraction, string? message)
    {
        if (fraction is not { } f)
        {
            return string.Empty;
        }

        var filled = (int)Math.Round(f * 10);
        return $"{new string('#', filled)}{new string('.', 10 - filled)} {f * 100:0}%{(message is null ? string.Empty : " " + message)}";
    }

    private static Command JobsCancelCommand(Io io)
    {
        var command = new Command("cancel", "Cancel a job in any state: one that has not started is discarded now; a running one is asked to stop (its token fires within a second) and ends discarded — or, with --resume, goes back to its queue with its checkpoint");
        var id = new Argument<long>("id") { Description = "The job id" };
        var reason = new Option<string?>("--reason") { Description = "Why, recorded in the job's history and readable by the job (JobContext.CancellationMessage)" };
        var resume = new Option<bool>("--resume") { Description = "Stop the running job but keep it: once its run stops it goes back to its queue with its checkpoint, the attempt not counted (pause the queue first to hold it there)" };
        command.Arguments.Add(id);
        command.Options.Add(reason);
        command.Options.Add(resume);
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var jobId = parse.GetValue(id);
            var who = $"keel jobs cancel by {Environment.UserName}@{Environment.MachineName}";
            var why = parse.GetValue(reason) is { Length: > 0 } given ? $"{given} ({who})" : who;
            var resumes = parse.GetValue(resume);
            var result = await context.Admin.CancelAsync(jobId, new CancelOptions { Reason = why, Resume = resumes }, ct);
            if (result == CancelResult.NotFound)
            {
                throw new NotFoundException($"there is no job {jobId}");
            }

            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { id = jobId, result = result.ToString(), reason = why, resume = resumes });
            }
            else
            {
                await context.Out.WriteLineAsync(result switch
                {
                    CancelResult.Cancelled => $"job {jobId} had not started: cancelled (discarded)",
                    CancelResult.Requested when resumes => $"job {jobId} is running: asked to stop; it goes back to its queue with its checkpoint once its run stops (see `keel jobs show {jobId}`)",
                    CancelResult.Requested => $"job {jobId} is running: asked to stop; it ends discarded once its run stops (see `keel jobs show {jobId}`)",
                    CancelResult.AlreadyRequested => $"job {jobId} is running and was already asked to stop",
                    CancelResult.NotRunning => $"job {jobId} is not running: --resume stops only a running job; it was left as it is",
                    _ => $"job {jobId} has already ended: nothing to cancel",
                });
            }

            // A job that had already ended was not cancelled: say so in the exit code as for any selection that matched nothing.
            return result is CancelResult.AlreadyEnded or CancelResult.NotRunning ? ExitCodes.NotFound : ExitCodes.Success;
        });
    }

    private static Command JobsBulkCommand(Io io, string name, string description, bool retry)
    {
        var command = new Command(name, description);
        var ids = new Argument<long[]>("ids") { Description = "Job ids", Arity = ArgumentArity.ZeroOrMore };
        var all = new Option<bool>("--all") { Description = "Every job matching the filters" };
        command.Arguments.Add(ids);
        command.Options.Add(all);
        if (!retry)
        {
            command.Options.Add(StateOption);
        }

        AddFilters(command);
        command.Options.Add(YesOption);
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            await context.RequireSchemaAsync(ct);
            var chosen = parse.GetValue(ids) ?? [];
            var everything = parse.GetValue(all);
            if (chosen.Length == 0 && !everything)
            {
                throw new UsageException($"name the jobs to {name}, or pass --all (with filters)");
            }

            if (chosen.Length > 0 && everything)
            {
                throw new UsageException("give job ids or --all, not both");
            }

            var now = DateTimeOffset.UtcNow;
            var filter = new JobFilter(
                parse.GetValue(QueueOption),
                parse.GetValue(KindOption),
                parse.GetValue(ErrorTypeOption),
                parse.GetValue(NewerThanOption) is { } n ? now - Durations.Parse(n) : null,
                parse.GetValue(OlderThanOption) is { } o ? now - Durations.Parse(o) : null);
            JobState[]? states = !retry && ParseState(parse.GetValue(StateOption)) is { } state ? [state] : null;
            if (everything)
            {
                await ConfirmAsync(parse, context, $"{(retry ? "Retry" : "Discard")} every {(retry ? "failed " : "")}job matching {Describe(filter, states)}?");
            }

            long done = 0;
            var progress = new Progress(total => done = total, parse.GetValue(JsonOption) ? null : context.Error, retry ? "retried" : "discarded");
            var count = retry
                ? await context.Admin.RetryJobsAsync(chosen.Length > 0 ? chosen : null, everything ? filter : null, progress, ct)
                : await context.Admin.DiscardJobsAsync(chosen.Length > 0 ? chosen : null, everything ? filter : null, states, progress, ct);
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { action = name, count });
            }
            else
            {
                await context.Out.WriteLineAsync($"{(retry ? "retried" : "discarded")} {count} jobs");
            }

            return count == 0
                ? throw new NotFoundException(chosen.Length > 0 ? $"none of the given jobs could be {(retry ? "retried (only failed jobs can)" : "discarded (running, finished or discarded jobs cannot)")}" : $"no job matches {Describe(filter, states)}")
                : ExitCodes.Success;
        });
    }

    private static string Describe(JobFilter filter, IReadOnlyCollection<JobState>? states)
    {
        var parts = new List<string>();
        if (states is { Count: > 0 })
        {
            parts.Add("state " + string.Join('/', states));
        }

        if (filter.Queue is not null)
        {
            parts.Add($"queue '{filter.Queue}'");
        }

        if (filter.Kind is not null)
        {
            parts.Add($"kind '{filter.Kind}'");
        }

        if (filter.ExceptionType is not null)
        {
            parts.Add($"error type '{filter.ExceptionType}'");
        }

        if (filter.FailedAfter is not null || filter.FailedBefore is not null)
        {
            parts.Add("the failure time window");
        }

        return parts.Count == 0 ? "no filter (all)" : string.Join(", ", parts);
    }

    private static string StateMarkup(JobState state) => state switch
    {
        JobState.Failed => "[red]failed[/]",
        JobState.Finished => "[green]finished[/]",
        JobState.Claimed => "[blue]in progress[/]",
        JobState.Blocked => "[yellow]blocked[/]",
        JobState.Discarded => "[grey]discarded[/]",
        JobState.Awaiting => "[blue]awaiting[/]",
        _ => state.ToString().ToLowerInvariant(),
    };

    private static string Truncate(string? text, int length) => text is null ? "" : text.Length <= length ? text : text[..length] + "…";

    /// <summary>Reports bulk progress on stderr, one line per batch, so stdout stays clean for scripts.</summary>
    private sealed class Progress(Action<long> record, TextWriter? writer, string verb) : IProgress<long>
    {
        public void Report(long value)
        {
            record(value);
            writer?.WriteLine($"  … {verb} {value}");
        }
    }
}
