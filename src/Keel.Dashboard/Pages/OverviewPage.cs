using Keel.Dashboard.Internal;
using Keel.Storage;

namespace Keel.Dashboard.Pages;

/// <summary>Counts per state, the last hour's throughput, failures and queue latency, and the queues and processes at a glance.</summary>
internal static class OverviewPage
{
    private const int Buckets = 60;

    public static async Task RenderAsync(DashboardContext context)
    {
        var now = context.Now;
        // Whole minutes, the current one last, so a bar never changes meaning between two refreshes.
        var since = new DateTimeOffset(now.UtcDateTime.Ticks - (now.UtcDateTime.Ticks % TimeSpan.TicksPerMinute), TimeSpan.Zero).AddMinutes(-(Buckets - 1));
        var counts = await context.Storage.JobsCountAsync(new JobsCountParams(context.Options.CountLimit), context.Aborted);
        var activity = await context.Storage.JobsActivityAsync(new JobsActivityParams(since, TimeSpan.FromMinutes(1), Buckets), context.Aborted);
        var queues = await context.Admin.ListQueuesAsync(context.Aborted);
        var processes = await context.Admin.ListProcessesAsync(context.Aborted);

        var html = new HtmlWriter();
        html.Raw("<h1>Overview</h1><section class=\"cards\">");
        foreach (var (state, slug, label) in States.All)
        {
            html.Add($"<a class=\"card state-{slug}\" href=\"{context.Base}/jobs/{slug}\"><span class=\"card-label\">{label}</span><span class=\"card-value\" data-state=\"{slug}\">{Format.Count(counts.Of(state), counts.Limit)}</span></a>");
        }

        html.Raw("</section><section class=\"charts\">");
        var finished = activity.Select(b => new JobActivityPoint(b.Start, b.Finished)).ToList();
        var failed = activity.Select(b => new JobActivityPoint(b.Start, b.Failed)).ToList();
        var latency = activity.Select(b => new JobActivityPoint(b.Start, b.MeanLatency?.TotalSeconds ?? 0, b.MeanLatency is not null)).ToList();
        html.Add($"{Components.BarChart($"Throughput: {Format.Number(activity.Sum(b => b.Finished))} finished in the last hour", "chart-throughput", finished, v => $"{Format.Number((long)v)} jobs/min", "throughput")}");
        html.Add($"{Components.BarChart($"Failures: {Format.Number(activity.Sum(b => b.Failed))} failed attempts in the last hour", "chart-failures", failed, v => $"{Format.Number((long)v)} failures/min", "failures")}");
        html.Add($"{Components.BarChart("Queue latency: mean wait from due to start, per minute", "chart-latency", latency, v => Format.Age(TimeSpan.FromSeconds(v)), "latency")}");
        html.Raw("</section><div class=\"columns\"><section><h2>Queues</h2>");
        if (queues.Count == 0)
        {
            html.Raw("<p class=\"muted\">No queue has jobs.</p>");
        }
        else
        {
            html.Raw("<table><thead><tr><th>Queue</th><th class=\"num\">Ready</th><th>Oldest ready</th><th class=\"num\">In progress</th><th class=\"num\">Failed</th></tr></thead><tbody>");
            foreach (var queue in queues.Take(12))
            {
                var paused = queue.Paused ? new Raw(" <span class=\"badge paused\">paused</span>") : new Raw(string.Empty);
                html.Add($"<tr><td><a href=\"{context.Url("/jobs/ready", ("queue", queue.Name))}\">{queue.Name}</a>{paused}</td><td class=\"num\">{Format.Number(queue.Ready)}</td><td>{(queue.OldestReadyAge is { } age ? Format.Age(age) : "—")}</td><td class=\"num\">{Format.Number(queue.Claimed)}</td><td class=\"num\">{Format.Number(queue.Failed)}</td></tr>");
            }

            html.Add($"</tbody></table><p><a href=\"{context.Base}/queues\">{(queues.Count == 1 ? "The queue's page" : $"All {Format.Number(queues.Count)} queues")}</a></p>");
        }

        var alive = context.Keel.AliveThreshold;
        html.Raw("</section><section><h2>Processes</h2>");
        if (processes.Count == 0)
        {
            html.Raw("<p class=\"muted\">No process is registered: nothing is running jobs.</p>");
        }
        else
        {
            html.Raw("<table><thead><tr><th>Kind</th><th class=\"num\">Count</th><th class=\"num\">Running jobs</th><th class=\"num\">Stale</th></tr></thead><tbody>");
            foreach (var group in processes.GroupBy(p => p.Kind).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                var stale = group.Count(p => p.HeartbeatAge > alive);
                var staleCell = stale > 0 ? new Raw($"<span class=\"badge stale\">{stale}</span>") : new Raw("0");
                html.Add($"<tr><td>{group.Key}</td><td class=\"num\">{group.Count()}</td><td class=\"num\">{group.Sum(p => p.Claims)}</td><td class=\"num\">{staleCell}</td></tr>");
            }

            html.Add($"</tbody></table><p><a href=\"{context.Base}/processes\">Process tree</a></p>");
        }

        html.Raw("</section></div>");
        await context.WritePageAsync("Overview", "overview", html);
    }
}
