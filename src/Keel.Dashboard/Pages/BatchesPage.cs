using System.Globalization;
using Keel.Dashboard.Internal;
using Keel.Storage;

namespace Keel.Dashboard.Pages;

/// <summary>Batches: a list with progress bars and counts, and one batch with its callbacks and jobs.</summary>
internal static class BatchesPage
{
    private const int PageSize = 50;

    public static async Task RenderAsync(DashboardContext context)
    {
        var filter = context.Query("filter");
        bool? pending = filter switch
        {
            null or "all" => null,
            "pending" => true,
            "completed" => false,
            _ => throw new DashboardException(400, $"unknown batch filter '{filter}': use all, pending or completed"),
        };
        long? before = context.Query("before") is { } b ? DashboardContext.ParseId(b, "batch") : null;
        var rows = await context.Storage.BatchesListAsync(new BatchesListParams(pending, before, PageSize + 1), context.Aborted);
        var page = rows.Take(PageSize).ToList();
        var html = new HtmlWriter();
        html.Add($"<h1>Batches <span class=\"count\">{page.Count}{(rows.Count > PageSize ? "+" : string.Empty)}</span></h1>");
        html.Raw("<p class=\"filters\">");
        foreach (var (key, label) in new[] { ("all", "All"), ("pending", "Pending"), ("completed", "Completed") })
        {
            var current = (filter ?? "all") == key ? new Raw(" class=\"active\" aria-current=\"true\"") : new Raw(string.Empty);
            html.Add($"<a href=\"{context.Url("/batches", ("filter", key == "all" ? null : key))}\"{current}>{label}</a> ");
        }

        html.Raw("</p>");
        if (page.Count == 0)
        {
            html.Raw("<p class=\"empty\">No batch matches.</p>");
            await context.WritePageAsync("Batches", "batches", html);
            return;
        }

        html.Raw("<table class=\"batches\"><thead><tr><th>Batch</th><th>State</th><th>Progress</th><th class=\"num\">Total</th><th class=\"num\">Pending</th><th class=\"num\">Succeeded</th><th class=\"num\">Failed</th><th class=\"num\">Discarded</th><th>Started</th><th>Completed</th></tr></thead><tbody>");
        foreach (var batch in page)
        {
            var description = batch.Description is { } d ? new Raw($" <span class=\"muted\">{HtmlWriter.Encode(d)}</span>") : new Raw(string.Empty);
            html.Add($"""
                <tr data-batch="{batch.Id}"><td><a href="{context.Base}/batch/{batch.Id}">batch {batch.Id}</a>{description}</td><td>{StateBadge(batch.State)}</td><td>{Progress(batch)}</td>
                <td class="num">{Format.Number(batch.Total)}</td><td class="num">{Format.Number(batch.Pending)}</td><td class="num">{Format.Number(batch.Succeeded)}</td>
                <td class="num">{Format.Number(batch.Failed)}</td><td class="num">{Format.Number(batch.Discarded)}</td>
                <td>{Components.Time(batch.CreatedAt, context.Now)}</td><td>{Components.Time(batch.CompletedAt, context.Now)}</td></tr>
                """);
        }

        html.Raw("</tbody></table>");
        if (rows.Count > PageSize)
        {
            html.Add($"<p class=\"pager\"><a href=\"{context.Url("/batches", ("filter", filter), ("before", page[^1].Id.ToString(CultureInfo.InvariantCulture)))}\">Older batches →</a></p>");
        }

        await context.WritePageAsync("Batches", "batches", html);
    }

    public static async Task RenderBatchAsync(DashboardContext context)
    {
        var id = DashboardContext.ParseId(context.Http.Request.RouteValues["id"] as string, "batch");
        var batch = await context.Storage.BatchGetAsync(id, context.Aborted)
            ?? throw new DashboardException(404, $"There is no batch {id}: it never existed, or it completed and was deleted by retention (ClearFinishedJobsAfter).");
        long? before = context.Query("before") is { } b ? DashboardContext.ParseId(b, "job") : null;
        var rows = await context.Storage.BatchJobsListAsync(new BatchJobsListParams(id, before, PageSize + 1), context.Aborted);
        var jobs = rows.Take(PageSize).ToList();
        var now = context.Now;
        var html = new HtmlWriter();
        html.Add($"<h1>Batch {batch.Id} {StateBadge(batch.State)}</h1>");
        if (batch.Description is { } description)
        {
            html.Add($"<p class=\"muted\">{description}</p>");
        }

        html.Add($"<div class=\"batch-progress\">{Progress(batch)}<p>{Percent(batch)}% of {Format.Number(batch.Total)} settled: {Format.Number(batch.Pending)} pending, {Format.Number(batch.Succeeded)} succeeded, {Format.Number(batch.Failed)} failed, {Format.Number(batch.Discarded)} discarded</p></div>");
        html.Raw("<dl class=\"fields\">");
        html.Add($"<dt>Started</dt><dd>{Components.Time(batch.CreatedAt, now)}</dd><dt>Completed</dt><dd>{Components.Time(batch.CompletedAt, now)}</dd>");
        if (batch.ParentBatchId is { } parent)
        {
            html.Add($"<dt>Inside</dt><dd><a href=\"{context.Base}/batch/{parent}\">batch {parent}</a> (it counts there as one job)</dd>");
        }

        html.Raw("</dl>");
        html.Add($"<section class=\"callbacks\"><h2>Callbacks <span class=\"count\">{batch.Callbacks.Count}</span></h2>");
        if (batch.Callbacks.Count == 0)
        {
            html.Raw("<p class=\"empty\">None.</p>");
        }
        else
        {
            html.Raw("<table class=\"callbacks\"><thead><tr><th>On</th><th>Kind</th><th>Job</th></tr></thead><tbody>");
            foreach (var callback in batch.Callbacks)
            {
                var job = callback.JobId is { } jobId ? new Raw($"<a href=\"{HtmlWriter.Encode(context.Base)}/job/{jobId}\">job {jobId}</a>") : new Raw("<span class=\"muted\">not enqueued</span>");
                html.Add($"<tr data-on=\"{callback.On.ToString().ToLowerInvariant()}\"><td>{callback.On.ToString().ToLowerInvariant()}</td><td><code>{callback.Kind}</code></td><td>{job}</td></tr>");
            }

            html.Raw("</tbody></table>");
        }

        html.Raw("</section>");
        html.Add($"<section class=\"batch-jobs\"><h2>Jobs <span class=\"muted\">newest first</span></h2>");
        html.Raw("<table class=\"jobs\"><thead><tr><th>Job</th><th>State</th><th>Kind</th><th>Queue</th><th class=\"num\">Attempts</th><th>Enqueued</th><th>Last error</th></tr></thead><tbody>");
        foreach (var job in jobs)
        {
            html.Add($"""
                <tr data-job="{job.Id}"><td><a href="{context.Base}/job/{job.Id}">{job.Id}</a></td><td>{Components.Badge(job.State)}</td><td><code>{job.Kind}</code></td><td>{job.Queue}</td>
                <td class="num">{job.Attempts}</td><td>{Components.Time(job.CreatedAt, now)}</td><td>{(job.ErrorType is null ? string.Empty : job.ErrorType + ": " + Format.Truncate(job.ErrorMessage, 80))}</td></tr>
                """);
        }

        html.Raw("</tbody></table>");
        if (rows.Count > PageSize)
        {
            html.Add($"<p class=\"pager\"><a href=\"{context.Url($"/batch/{id}", ("before", jobs[^1].Id.ToString(CultureInfo.InvariantCulture)))}\">Older jobs →</a></p>");
        }

        html.Raw("</section>");
        await context.WritePageAsync($"Batch {batch.Id}", "batches", html);
    }

    private static long Percent(BatchInfo batch) => batch.Total == 0 ? 100 : (batch.Total - batch.Pending) * 100 / batch.Total;

    private static Raw StateBadge(BatchState state)
    {
        var name = state.ToString().ToLowerInvariant();
        return new Raw($"<span class=\"badge batch-{name}\">{name}</span>");
    }

    /// <summary>
    /// A bar of the settled share: succeeded, failed and discarded segments, the rest (pending) left empty. SVG
    /// attributes, not inline styles, so the strict content security policy holds.
    /// </summary>
    private static Raw Progress(BatchInfo batch)
    {
        double Share(long part) => batch.Total == 0 ? 0 : part * 100.0 / batch.Total;
        string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
        var succeeded = Share(batch.Succeeded);
        var failed = Share(batch.Failed);
        var discarded = Share(batch.Discarded);
        return new Raw(
            $"<svg class=\"progress\" viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"{Percent(batch)}\"><title>{Percent(batch)}% settled</title>" +
            $"<rect class=\"pending\" x=\"0\" y=\"0\" width=\"100\" height=\"10\"/>" +
            $"<rect class=\"succeeded\" x=\"0\" y=\"0\" width=\"{Number(succeeded)}\" height=\"10\"/>" +
            $"<rect class=\"failed\" x=\"{Number(succeeded)}\" y=\"0\" width=\"{Number(failed)}\" height=\"10\"/>" +
            $"<rect class=\"discarded\" x=\"{Number(succeeded + failed)}\" y=\"0\" width=\"{Number(discarded)}\" height=\"10\"/></svg>");
    }
}
