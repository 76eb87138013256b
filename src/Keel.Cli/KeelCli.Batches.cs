using System.CommandLine;
using Keel.Storage;
using Spectre.Console;

namespace Keel.Cli;

public static partial class KeelCli
{
    private static Command BatchesCommand(Io io)
    {
        var batches = new Command("batches", "List and show batches: their counts, state, callbacks and jobs");
        batches.Subcommands.Add(BatchesListCommand(io));
        batches.Subcommands.Add(BatchesShowCommand(io));
        return batches;
    }

    private static Command BatchesListCommand(Io io)
    {
        var command = new Command("list", "List batches, newest first");
        var pending = new Option<bool>("--pending") { Description = "Only batches with jobs still pending" };
        var completed = new Option<bool>("--completed") { Description = "Only completed batches" };
        command.Options.Add(pending);
        command.Options.Add(completed);
        var paging = new Paging(command, "batch", "batches");
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            var size = paging.Size(parse);
            if (parse.GetValue(pending) && parse.GetValue(completed))
            {
                throw new UsageException("give --pending or --completed, not both");
            }

            await context.RequireSchemaAsync(ct);
            bool? only = parse.GetValue(pending) ? true : parse.GetValue(completed) ? false : null;
            var (page, next) = Paging.Cut(await context.Storage.BatchesListAsync(new BatchesListParams(only, paging.Before(parse), size + 1), ct), size, b => b.Id);
            var code = page.Count == 0 ? ExitCodes.NotFound : ExitCodes.Success;
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { batches = page.Select(b => new { b.Id, b.ParentBatchId, b.Description, State = b.State.ToString(), b.Total, b.Pending, b.Succeeded, b.Failed, b.Discarded, b.CreatedAt, b.CompletedAt }), next });
                return code;
            }

            if (page.Count == 0)
            {
                await context.Error.WriteLineAsync("keel: no batch matches");
                return code;
            }

            var table = new Table().AddColumns("id", "state", "done", "pending", "succeeded", "failed", "discarded", "started", "completed", "description");
            foreach (var batch in page)
            {
                table.AddRow(
                    batch.Id.ToString(Inv),
                    BatchStateMarkup(batch.State),
                    $"{Percent(batch)}%",
                    batch.Pending.ToString("N0", Inv),
                    batch.Succeeded.ToString("N0", Inv),
                    batch.Failed.ToString("N0", Inv),
                    batch.Discarded.ToString("N0", Inv),
                    batch.CreatedAt.ToString("u", Inv),
                    batch.CompletedAt?.ToString("u", Inv) ?? string.Empty,
                    Markup.Escape(batch.Description ?? string.Empty));
            }

            context.Console.Write(table);
            await context.Out.WriteLineAsync(paging.Footer(page.Count, next));
            return ExitCodes.Success;
        });
    }

    private static Command BatchesShowCommand(Io io)
    {
        var command = new Command("show", "Show one batch: counts, state, callbacks and its newest jobs");
        var id = new Argument<long>("id") { Description = "The batch id" };
        var jobs = new Option<int>("--jobs") { Description = "How many of its jobs to list, newest first (0–10000)", DefaultValueFactory = _ => 20 };
        command.Arguments.Add(id);
        command.Options.Add(jobs);
        command.Options.Add(JsonOption);
        return WithAction(command, io, async (parse, context, ct) =>
        {
            var count = parse.GetValue(jobs);
            if (count is < 0 or > 10_000)
            {
                throw new UsageException($"--jobs must be between 0 and 10000 (was {count})");
            }

            await context.RequireSchemaAsync(ct);
            var batch = await context.Client.GetBatchAsync(parse.GetValue(id), ct) ?? throw new NotFoundException($"there is no batch {parse.GetValue(id)}");
            var members = count == 0 ? [] : await context.Storage.BatchJobsListAsync(new BatchJobsListParams(batch.Id, null, count), ct);
            if (parse.GetValue(JsonOption))
            {
                context.WriteJson(new { batch, state = batch.State.ToString(), jobs = members });
                return ExitCodes.Success;
            }

            var grid = new Grid().AddColumn().AddColumn();
            grid.AddRow("batch", batch.Id.ToString(Inv));
            grid.AddRow("state", BatchStateMarkup(batch.State));
            if (batch.Description is { } description)
            {
                grid.AddRow("description", Markup.Escape(description));
            }

            if (batch.ParentBatchId is { } parent)
            {
                grid.AddRow("inside batch", parent.ToString(Inv));
            }

            grid.AddRow("progress", $"{Percent(batch)}% of {batch.Total:N0}: {batch.Pending:N0} pending, {batch.Succeeded:N0} succeeded, {batch.Failed:N0} failed, {batch.Discarded:N0} discarded");
            grid.AddRow("started", batch.CreatedAt.ToString("u", Inv));
            grid.AddRow("completed", batch.CompletedAt?.ToString("u", Inv) ?? "not yet");
            context.Console.Write(grid);
            if (batch.Callbacks.Count > 0)
            {
                var callbacks = new Table().Title("callbacks").AddColumns("on", "kind", "job");
                foreach (var callback in batch.Callbacks)
                {
                    callbacks.AddRow(callback.On.ToString().ToLowerInvariant(), Markup.Escape(callback.Kind), callback.JobId?.ToString(Inv) ?? "not enqueued");
                }

                context.Console.Write(callbacks);
            }

            if (members.Count > 0)
            {
                var table = new Table().Title($"jobs (newest {members.Count})").AddColumns("id", "state", "kind", "queue", "attempts", "last error");
                foreach (var job in members)
                {
                    table.AddRow(job.Id.ToString(Inv), StateMarkup(job.State), Markup.Escape(job.Kind), Markup.Escape(job.Queue), job.Attempts.ToString(Inv), Markup.Escape(job.ErrorType is null ? "" : $"{job.ErrorType}: {Truncate(job.ErrorMessage, 60)}"));
                }

                context.Console.Write(table);
            }

            return ExitCodes.Success;
        });
    }

    private static long Percent(BatchInfo batch) => batch.Total == 0 ? 100 : (batch.Total - batch.Pending) * 100 / batch.Total;

    private static string BatchStateMarkup(BatchState state) => state switch
    {
        BatchState.Succeeded => "[green]succeeded[/]",
        BatchState.Failed => "[red]failed[/]",
        _ => "[blue]pending[/]",
    };
}
