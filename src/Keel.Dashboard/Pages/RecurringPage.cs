using Keel.Dashboard.Internal;

namespace Keel.Dashboard.Pages;

/// <summary>Recurring tasks: schedule, last and next run; run now.</summary>
internal static class RecurringPage
{
    public static async Task RenderAsync(DashboardContext context)
    {
        var tasks = await context.Recurring.ListAsync(context.Aborted);
        var now = context.Now;
        var html = new HtmlWriter();
        html.Add($"<h1>Recurring tasks <span class=\"count\">{tasks.Count}</span></h1>");
        if (tasks.Count == 0)
        {
            html.Raw("<p class=\"empty\">No recurring task is defined.</p>");
            await context.WritePageAsync("Recurring tasks", "recurring", html);
            return;
        }

        html.Raw("<table class=\"recurring\"><thead><tr><th>Task</th><th>Kind</th><th>Schedule</th><th>Queue</th><th>Last run</th><th>Next run</th><th>Source</th>");
        html.Raw(context.CanAct ? "<th></th></tr></thead><tbody>" : "</tr></thead><tbody>");
        foreach (var info in tasks)
        {
            var task = info.Task;
            var last = info.LastRunAt is { } lastRun
                ? info.LastJobId is { } job
                    ? new Raw($"{Components.Time(lastRun, now).Value} · <a href=\"{HtmlWriter.Encode(context.Base)}/job/{job}\">job {job}</a>")
                    : Components.Time(lastRun, now)
                : new Raw("<span class=\"muted\">never</span>");
            var description = task.Description is { } d ? new Raw($"<div class=\"muted\">{HtmlWriter.Encode(d)}</div>") : new Raw(string.Empty);
            html.Add($"""
                <tr data-task="{task.Key}"><td><strong>{task.Key}</strong>{description}</td><td>{task.Kind}</td>
                <td><code>{task.Schedule}</code>{(task.TimeZone is { } tz ? " (" + tz + ")" : string.Empty)}</td><td>{task.Queue ?? "(kind's)"}</td>
                <td>{last}</td><td>{Components.Time(info.NextRunAt, now)}</td><td>{(task.Static ? "configuration" : "dynamic")}</td>
                """);
            if (context.CanAct)
            {
                html.Add($"<td class=\"actions\">{Components.ActionButton(context, "recurring-run", "Run now", [("key", task.Key)])}</td>");
            }

            html.Raw("</tr>");
        }

        html.Raw("</tbody></table>");
        await context.WritePageAsync("Recurring tasks", "recurring", html);
    }
}
