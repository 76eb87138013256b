using Keel.Dashboard.Internal;
using Keel.Storage;

namespace Keel.Dashboard.Pages;

/// <summary>
/// Every known queue — with jobs in any state, paused, or named by this application's workers — with its size, oldest
/// ready age and pause state; pause and resume, and pause a queue by name before it has jobs.
/// </summary>
internal static class QueuesPage
{
    public static async Task RenderAsync(DashboardContext context)
    {
        var stored = await context.Admin.ListQueuesAsync(context.Aborted);
        // Queues this application's workers name exactly are known before their first job: listed with zeros.
        var configured = context.Keel.Workers.SelectMany(w => w.Queues).Where(q => !q.Contains('*', StringComparison.Ordinal));
        var queues = stored
            .Concat(configured.Where(q => stored.All(s => s.Name != q)).Distinct(StringComparer.Ordinal).Select(q => new QueueInfo(q, 0, 0, 0, 0, 0, null, false)))
            .OrderBy(q => q.Name, StringComparer.Ordinal)
            .ToList();
        var html = new HtmlWriter();
        html.Raw("<h1>Queues</h1>");
        if (queues.Count == 0)
        {
            html.Raw("<p class=\"empty\">No queue is known yet: none has had a job or a pause.</p>");
        }
        else
        {
            Table(context, html, queues);
        }

        if (context.CanAct)
        {
            html.Add($"""
                <form method="post" class="pause-ahead" id="pause-ahead" action="{context.Base}/actions/queue-pause">{context.AntiforgeryField()}<input type="hidden" name="return" value="{context.Here}">
                <label>Pause a queue by name, also one that has no jobs yet <input name="queue" required placeholder="e.g. reports" aria-label="Queue to pause"></label>
                <button type="submit" class="secondary">Pause</button></form>
                """);
        }

        await context.WritePageAsync("Queues", "queues", html);
    }

    private static void Table(DashboardContext context, HtmlWriter html, IReadOnlyList<QueueInfo> queues)
    {
        html.Raw("<table id=\"queues\"><thead><tr><th>Queue</th><th class=\"num\">Ready</th><th>Oldest ready</th><th class=\"num\">Scheduled</th><th class=\"num\">In progress</th><th class=\"num\">Blocked</th><th class=\"num\">Failed</th><th>Status</th><th></th></tr></thead><tbody>");
        foreach (var queue in queues)
        {
            var idle = queue is { Ready: 0, Scheduled: 0, Claimed: 0, Blocked: 0, Failed: 0 };
            var status = queue.Paused ? new Raw("<span class=\"badge paused\">paused</span>")
                : idle ? new Raw("<span class=\"badge idle\">idle</span>")
                : new Raw("<span class=\"badge running\">running</span>");
            var action = queue.Paused
                ? Components.ActionButton(context, "queue-resume", "Resume", [("queue", queue.Name)])
                : Components.ActionButton(context, "queue-pause", "Pause", [("queue", queue.Name)], "secondary");
            html.Add($"""
                <tr data-queue="{queue.Name}"><td><a href="{context.Url("/jobs/ready", ("queue", queue.Name))}">{queue.Name}</a></td>
                <td class="num">{Format.Number(queue.Ready)}</td><td>{(queue.OldestReadyAge is { } age ? Format.Age(age) : "—")}</td>
                <td class="num"><a href="{context.Url("/jobs/scheduled", ("queue", queue.Name))}">{Format.Number(queue.Scheduled)}</a></td>
                <td class="num"><a href="{context.Url("/jobs/in-progress", ("queue", queue.Name))}">{Format.Number(queue.Claimed)}</a></td>
                <td class="num"><a href="{context.Url("/jobs/blocked", ("queue", queue.Name))}">{Format.Number(queue.Blocked)}</a></td>
                <td class="num"><a href="{context.Url("/jobs/failed", ("queue", queue.Name))}">{Format.Number(queue.Failed)}</a></td>
                <td>{status}</td><td class="actions">{action}</td></tr>
                """);
        }

        html.Raw("</tbody></table><p class=\"muted\">A paused queue keeps its jobs; workers skip it from their next poll until it is resumed. An idle queue has no job waiting or running (its finished jobs are kept until retention deletes them).</p>");
    }
}
