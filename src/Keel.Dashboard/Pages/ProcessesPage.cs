using Keel.Dashboard.Internal;
using Keel.Storage;

namespace Keel.Dashboard.Pages;

/// <summary>Registered processes as a supervisor tree: kind, host, pid, heartbeat age, running jobs.</summary>
internal static class ProcessesPage
{
    public static async Task RenderAsync(DashboardContext context)
    {
        var processes = await context.Admin.ListProcessesAsync(context.Aborted);
        var alive = context.Keel.AliveThreshold;
        var html = new HtmlWriter();
        html.Add($"<h1>Processes <span class=\"count\">{processes.Count}</span></h1>");
        if (processes.Count == 0)
        {
            html.Raw("<p class=\"empty\">No process is registered: nothing is running jobs.</p>");
            await context.WritePageAsync("Processes", "processes", html);
            return;
        }

        html.Add($"<p class=\"muted\">A process is <span class=\"badge stale\">stale</span> when its last heartbeat is older than the alive threshold ({Format.Age(alive)}); maintenance prunes it and recovers its jobs.</p>");
        html.Raw("<table class=\"processes\"><thead><tr><th>Process</th><th>Kind</th><th>Host</th><th class=\"num\">Pid</th><th>Started</th><th>Heartbeat</th><th class=\"num\">Running jobs</th><th>Configuration</th></tr></thead><tbody>");
        var ids = processes.Select(p => p.Id).ToHashSet();
        var children = processes.Where(p => p.SupervisorId is { } s && ids.Contains(s)).ToLookup(p => p.SupervisorId!.Value);
        foreach (var root in processes.Where(p => p.SupervisorId is not { } s || !ids.Contains(s)).OrderBy(p => p.Kind == "Supervisor" ? 0 : 1).ThenBy(p => p.Id))
        {
            Row(context, html, root, 0, alive);
            foreach (var child in children[root.Id].OrderBy(p => p.Kind, StringComparer.Ordinal).ThenBy(p => p.Id))
            {
                Row(context, html, child, 1, alive);
            }
        }

        html.Raw("</tbody></table>");
        await context.WritePageAsync("Processes", "processes", html);
    }

    private static void Row(DashboardContext context, HtmlWriter html, ProcessInfo process, int depth, TimeSpan alive)
    {
        var stale = process.HeartbeatAge > alive;
        var flag = stale ? new Raw(" <span class=\"badge stale\">stale</span>") : new Raw(string.Empty);
        var indent = depth > 0 ? new Raw("<span class=\"tree\">└</span> ") : new Raw(string.Empty);
        var jobs = process.Claims > 0
            ? new Raw($"<a href=\"{HtmlWriter.Encode(context.Url("/jobs/in-progress", ("process", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))))}\">{process.Claims}</a>")
            : new Raw("0");
        html.Add($"""
            <tr id="process-{process.Id}" data-process="{process.Id}" class="depth-{depth}">
            <td>{indent}{process.Name} <span class="muted">#{process.Id}</span></td><td>{process.Kind}</td><td>{process.Hostname}</td><td class="num">{process.Pid}</td>
            <td>{Components.Time(process.StartedAt, context.Now)}</td><td>{Format.Age(process.HeartbeatAge)} ago{flag}</td><td class="num">{jobs}</td>
            <td><code class="metadata">{Format.Truncate(process.Metadata, 160)}</code></td></tr>
            """);
    }
}
