using System.Globalization;
using Keel.Dashboard.Internal;
using Keel.Storage;

namespace Keel.Dashboard.Pages;

/// <summary>The jobs of one state, newest first, filtered, a keyset page at a time (never OFFSET, counts capped).</summary>
internal static class JobsPage
{
    public static async Task RenderAsync(DashboardContext context)
    {
        var state = States.Parse(context.Http.Request.RouteValues["state"] as string);
        if (state == JobState.Claimed)
        {
            await InProgressPage.RenderAsync(context);
            return;
        }

        var query = JobQuery.Parse(state, context.Query);
        long? before = context.Query("before") is { } b ? DashboardContext.ParseId(b, "job") : null;
        var pageSize = context.Options.PageSize;
        var rows = await context.Storage.JobsListAsync(query.List(before, pageSize + 1), context.Aborted);
        var hasMore = rows.Count > pageSize;
        var jobs = rows.Take(pageSize).ToList();
        var counts = await context.Storage.JobsCountAsync(new JobsCountParams(context.Options.CountLimit), context.Aborted);
        var label = States.Label(state);

        var html = new HtmlWriter();
        html.Add($"<h1>{label} jobs <span class=\"count\">{Format.Count(counts.Of(state), counts.Limit)}</span></h1>");
        Tabs(context, html, counts, state, query);
        FilterForm(context, html, query);
        // Retry / Discard / "all" buttons over an empty list offer what cannot be done.
        var bulk = state == JobState.Failed && context.CanAct && jobs.Count > 0;
        if (bulk)
        {
            BulkForm(context, html, query);
        }

        if (jobs.Count == 0)
        {
            html.Add($"<p class=\"empty\">No {label.ToLowerInvariant()} jobs{(query.IsFiltered ? " match this filter" : string.Empty)}{(before is null ? string.Empty : " on this page")}.</p>");
        }
        else
        {
            Table(context, html, state, jobs, bulk);
        }

        html.Raw("<nav class=\"pager\">");
        if (before is not null)
        {
            html.Add($"<a href=\"{context.Url("/jobs/" + States.Slug(state), query.Fields)}\">← Newest</a>");
        }

        if (hasMore)
        {
            html.Add($"<a rel=\"next\" href=\"{context.Url("/jobs/" + States.Slug(state), [.. query.Fields, ("before", jobs[^1].Id.ToString(CultureInfo.InvariantCulture))])}\">Older →</a>");
        }

        html.Raw("</nav>");
        await context.WritePageAsync(label + " jobs", States.Slug(state), html);
    }

    private static void Tabs(DashboardContext context, HtmlWriter html, JobCounts counts, JobState current, JobQuery query)
    {
        html.Raw("<nav class=\"tabs\">");
        foreach (var (state, slug, label) in States.All)
        {
            var active = state == current ? new Raw(" class=\"active\"") : new Raw(string.Empty);
            // Queue and kind carry over between states; the error type and time range mean something else elsewhere.
            html.Add($"<a href=\"{context.Url("/jobs/" + slug, ("queue", query.Queue), ("kind", query.Kind))}\"{active}>{label} <span class=\"count\">{Format.Count(counts.Of(state), counts.Limit)}</span></a>");
        }

        html.Raw("</nav>");
    }

    private static void FilterForm(DashboardContext context, HtmlWriter html, JobQuery query)
    {
        var time = query.State == JobState.Failed ? "Failed" : "Enqueued";
        html.Add($"""
            <form class="filters" method="get" action="{context.Base}/jobs/{States.Slug(query.State)}">
            <label>Queue <input name="queue" value="{query.Queue}" placeholder="any"></label>
            <label>Kind <input name="kind" value="{query.Kind}" placeholder="any"></label>
            """);
        if (query.State == JobState.Failed)
        {
            html.Add($"<label>Error type <input name=\"error\" value=\"{query.ErrorType}\" placeholder=\"e.g. System.TimeoutException\"></label>");
        }

        html.Add($"""
            <label>{time} from <input name="from" type="datetime-local" step="1" value="{query.FromText}"></label>
            <label>to <input name="to" type="datetime-local" step="1" value="{query.ToText}"></label>
            <button type="submit">Filter</button>
            """);
        if (query.IsFiltered)
        {
            html.Add($"<a class=\"clear\" href=\"{context.Base}/jobs/{States.Slug(query.State)}\">Clear</a>");
        }

        html.Raw("</form>");
    }

    private static void BulkForm(DashboardContext context, HtmlWriter html, JobQuery query)
    {
        html.Add($"<form id=\"bulk\" class=\"bulk\" method=\"post\" action=\"{context.Base}/actions/bulk\">{context.AntiforgeryField()}<input type=\"hidden\" name=\"return\" value=\"{context.Here}\"><input type=\"hidden\" name=\"state\" value=\"failed\">");
        foreach (var (name, value) in query.Fields)
        {
            if (value is not null)
            {
                html.Add($"<input type=\"hidden\" name=\"{name}\" value=\"{value}\">");
            }
        }

        var matching = query.IsFiltered ? "matching" : "failed";
        html.Add($"""
            <span class="muted">Selected:</span>
            <button type="submit" name="op" value="retry-selected">Retry</button>
            <button type="submit" name="op" value="discard-selected" class="danger">Discard</button>
            <span class="muted">All {matching}:</span>
            <button type="submit" name="op" value="retry-all">Retry all</button>
            <button type="submit" name="op" value="discard-all" class="danger">Discard all</button>
            </form>
            """);
    }

    private static void Table(DashboardContext context, HtmlWriter html, JobState state, IReadOnlyList<JobSummary> jobs, bool bulk)
    {
        var now = context.Now;
        if (state is JobState.Scheduled or JobState.Blocked or JobState.Failed)
        {
            html.Add($"{Components.RowActionsForm(context, ("state", States.Slug(state)))}");
        }

        html.Raw("<table class=\"jobs\"><thead><tr>");
        if (bulk)
        {
            html.Raw("<th class=\"check\"><input type=\"checkbox\" data-select-all=\"ids\" aria-label=\"Select all\"></th>");
        }

        html.Raw("<th>ID</th><th>Kind</th><th>Queue</th><th class=\"num\">Attempts</th><th>Enqueued</th>");
        html.Raw(state switch
        {
            JobState.Ready => "<th class=\"num\">Priority</th>",
            JobState.Scheduled => "<th>Due</th>",
            JobState.Blocked => "<th>Concurrency key</th>",
            JobState.Failed => "<th>Error</th>",
            JobState.Finished => "<th>Finished</th>",
            JobState.Discarded => "<th>Discarded</th>",
            _ => string.Empty,
        });
        html.Raw(context.CanAct && state is JobState.Scheduled or JobState.Blocked or JobState.Failed ? "<th></th></tr></thead><tbody>" : "</tr></thead><tbody>");
        foreach (var job in jobs)
        {
            var id = job.Id.ToString(CultureInfo.InvariantCulture);
            html.Add($"<tr data-job=\"{job.Id}\">");
            if (bulk)
            {
                html.Add($"<td class=\"check\"><input type=\"checkbox\" name=\"ids\" value=\"{job.Id}\" form=\"bulk\" aria-label=\"Select job {job.Id}\"></td>");
            }

            html.Add($"<td><a href=\"{context.Base}/job/{job.Id}\">{job.Id}</a></td><td>{job.Kind}</td><td>{job.Queue}</td><td class=\"num\">{job.Attempts}</td><td>{Components.Time(job.CreatedAt, now)}</td>");
            switch (state)
            {
                case JobState.Ready:
                    html.Add($"<td class=\"num\">{job.Priority}</td>");
                    break;
                case JobState.Scheduled:
                    html.Add($"<td>{Components.Time(job.ScheduledAt, now)}</td>");
                    break;
                case JobState.Blocked:
                    html.Add($"<td><code>{job.ConcurrencyKey}</code></td>");
                    break;
                case JobState.Failed:
                    html.Add($"<td class=\"error\"><code>{job.ErrorType}</code> <span title=\"{job.ErrorMessage}\">{Format.Truncate(job.ErrorMessage, 120)}</span></td>");
                    break;
                case JobState.Finished:
                case JobState.Discarded:
                    html.Add($"<td>{Components.Time(job.FinishedAt, now)}</td>");
                    break;
            }

            if (context.CanAct && state is JobState.Scheduled or JobState.Blocked or JobState.Failed)
            {
                html.Raw("<td class=\"actions\">");
                html.Add($"{(state == JobState.Failed ? Components.RowButton(context, "retry", "Retry", "ids", id) : Components.RowButton(context, "run-now", "Run now", "id", id))} ");
                html.Add($"{Components.RowButton(context, "discard", "Discard", "ids", id, "danger", $"Discard job {id}?")}");
                html.Raw("</td>");
            }

            html.Raw("</tr>");
        }

        html.Raw("</tbody></table>");
    }
}
