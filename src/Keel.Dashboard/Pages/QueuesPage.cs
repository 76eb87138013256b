using Keel.Dashboard.Internal;

namespace Keel.Dashboard.Pages;

/// <summary>Every queue with its size, oldest ready age and pause state; pause and resume.</summary>
internal static class QueuesPage
{
    public static async Task RenderAsync(DashboardContext context)
    {
        var queues = await context.Admin.ListQueuesAsync(context.Aborted);
        var html = new HtmlWriter();
        html.Raw("<h1>Queues</h1>");
        if (queues.Count == 0)
        {
            html.Raw("<p class=\"muted\">No queue has jobs or is paused.</p>");
            await context.WritePageAsync("Queues", "queues", html);
            return;
        }

        html.Raw("<table id=\"queues\"><thead><tr><th>Queue</th><th class=\"num\">Ready</th><th>Oldest ready</th><th class=\"num\">Scheduled</th><th class=\"num\">In progress</th><th class=\"num\">Blocked</th><th class=\"num\">Failed</th><th>Status</th><th></th></tr></thead><tbody>");
        foreach (var queue in queues)
        {
            var status = queue.Paused ? new Raw("<span class=\"badge paused\">paused</span>") : new Raw("<span class=\"badge running\">running</span>");
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

        html.Raw("</tbody></table><p class=\"muted\">A paused queue keeps its jobs; workers skip it from their next poll until it is resumed.</p>");
        await context.WritePageAsync("Queues", "queues", html);
    }
}
