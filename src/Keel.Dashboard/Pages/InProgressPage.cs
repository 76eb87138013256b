using System.Globalization;
using Keel.Dashboard.Internal;
using Keel.Storage;

namespace Keel.Dashboard.Pages;

/// <summary>Jobs in progress (claims): age, progress, owner process and its heartbeat age, a stale flag; cancel, release or fail.</summary>
internal static class InProgressPage
{
    /// <summary>Claims are bounded by the workers' threads; a page beyond this many is not a dashboard's job.</summary>
    private const int Limit = 500;

    public static async Task RenderAsync(DashboardContext context)
    {
        long? processId = context.Query("process") is { } p ? DashboardContext.ParseId(p, "process") : null;
        var queue = context.Query("queue");
        var kind = context.Query("kind");
        var staleOnly = context.Query("stale") == "1";
        var claims = await context.Admin.ListClaimsAsync(staleOnly, processId, Limit, context.Aborted);
        var shown = claims.Where(c => (queue is null || c.Queue == queue) && (kind is null || c.Kind == kind)).ToList();
        var counts = await context.Storage.JobsCountAsync(new JobsCountParams(context.Options.CountLimit), context.Aborted);
        var alive = context.Keel.AliveThreshold;
        var staleCount = claims.Count(c => c.IsStale(alive));

        var html = new HtmlWriter();
        html.Add($"<h1>In progress <span class=\"count\">{Format.Count(counts.Of(JobState.Claimed), counts.Limit)}</span></h1>");
        html.Raw("<nav class=\"tabs\">");
        foreach (var (state, slug, label) in States.All)
        {
            var active = state == JobState.Claimed ? new Raw(" class=\"active\"") : new Raw(string.Empty);
            html.Add($"<a href=\"{context.Url("/jobs/" + slug, ("queue", queue), ("kind", kind))}\"{active}>{label} <span class=\"count\">{Format.Count(counts.Of(state), counts.Limit)}</span></a>");
        }

        html.Add($"""
            </nav>
            <form class="filters" method="get" action="{context.Base}/jobs/in-progress">
            <label>Queue <input name="queue" value="{queue}" placeholder="any"></label>
            <label>Kind <input name="kind" value="{kind}" placeholder="any"></label>
            <label>Process id <input name="process" value="{processId?.ToString(CultureInfo.InvariantCulture)}" placeholder="any" inputmode="numeric"></label>
            <label class="check"><input type="checkbox" name="stale" value="1"{(staleOnly ? new Raw(" checked") : new Raw(string.Empty))}> stale only</label>
            <button type="submit">Filter</button>
            </form>
            <p class="muted">A claim is <span class="badge stale">stale</span> when its process has not sent a heartbeat for longer than the alive threshold ({Format.Age(alive)}): the process is probably dead, and maintenance will recover the job. Cancel asks the run to stop (its token fires within a second) and discards the job; release puts a job back to ready now (the run is not counted); fail records it as failed.</p>
            """);
        if (staleCount > 0 && context.CanAct)
        {
            html.Add($"<p>{Components.ActionButton(context, "release-stale", $"Release all {staleCount} stale claims", [], "danger")}</p>");
        }

        if (shown.Count == 0)
        {
            html.Raw("<p class=\"empty\">No job is in progress.</p>");
        }
        else
        {
            html.Add($"{Components.RowActionsForm(context)}");
            html.Raw("<table class=\"claims\"><thead><tr><th>Job</th><th>Kind</th><th>Queue</th><th class=\"num\">Attempt</th><th>Running for</th><th>Progress</th><th>Process</th><th>Heartbeat</th><th></th>");
            html.Raw(context.CanAct ? "<th></th></tr></thead><tbody>" : "</tr></thead><tbody>");
            foreach (var claim in shown)
            {
                var stale = claim.IsStale(alive);
                var flag = stale ? new Raw("<span class=\"badge stale\">stale</span>") : new Raw("<span class=\"badge alive\">alive</span>");
                var cancelling = claim.CancelRequested is { } why ? new Raw($" <span class=\"badge cancelling\" title=\"{HtmlWriter.Encode(why)}\">cancelling</span>") : new Raw(string.Empty);
                html.Add($"""
                    <tr data-job="{claim.JobId}" data-claim="{claim.ClaimId}"{(stale ? new Raw(" class=\"stale-row\"") : new Raw(string.Empty))}>
                    <td><a href="{context.Base}/job/{claim.JobId}">{claim.JobId}</a></td><td>{claim.Kind}</td><td>{claim.Queue}</td><td class="num">{claim.Attempt}</td>
                    <td>{Components.Age(claim.ClaimAge, claim.ClaimedAt)}</td>
                    <td>{Components.Progress(claim.Progress, claim.ProgressMessage)}</td>
                    <td><a href="{context.Url("/processes")}#process-{claim.ProcessId}">{claim.ProcessName}</a> <span class="muted">pid {claim.Pid} on {claim.Hostname}</span></td>
                    <td>{Format.Age(claim.HeartbeatAge)} ago</td><td>{flag}{cancelling}</td>
                    """);
                if (context.CanAct)
                {
                    var id = claim.ClaimId.ToString(CultureInfo.InvariantCulture);
                    var job = claim.JobId.ToString(CultureInfo.InvariantCulture);
                    html.Add($"""
                        <td class="actions">{Components.RowButton(context, "cancel", "Cancel", "id", job, "danger", $"Cancel job {claim.JobId}? Its run is asked to stop within a second, and the job is discarded.")} {Components.RowButton(context, "release", "Release", "claim", id, "secondary", $"Put job {claim.JobId} back to ready? If its worker is still running it, the job may run twice.")} {Components.RowButton(context, "fail", "Fail", "claim", id, "danger", $"Mark job {claim.JobId} failed?")}</td>
                        """);
                }

                html.Raw("</tr>");
            }

            html.Raw("</tbody></table>");
            if (claims.Count >= Limit)
            {
                html.Add($"<p class=\"muted\">Showing the {Limit} oldest claims.</p>");
            }
        }

        await context.WritePageAsync("In progress", "in-progress", html);
    }
}
