using System.Globalization;

namespace Keel.Dashboard.Internal;

/// <summary>The page shell: head, navigation bar, notice, content.</summary>
internal static class Layout
{
    private static readonly (string Key, string Path, string Label)[] Nav =
    [
        ("overview", "/", "Overview"),
        ("queues", "/queues", "Queues"),
        .. States.All.Select(s => (s.Slug, "/jobs/" + s.Slug, s.Label)),
        ("batches", "/batches", "Batches"),
        ("processes", "/processes", "Processes"),
        ("recurring", "/recurring", "Recurring"),
    ];

    public static string Render(DashboardContext context, string title, string active, HtmlWriter body)
    {
        var html = new HtmlWriter();
        var refresh = ((int)context.Options.AutoRefreshInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        html.Add($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{title} · Keel</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="{context.Base}/assets/keel.css">
            <script src="{context.Base}/assets/keel.js" defer></script>
            </head>
            <body data-refresh-ms="{refresh}">
            <header class="top">
            <nav>
            <a class="brand" href="{context.Base}/">Keel</a>
            """);
        foreach (var (key, path, label) in Nav)
        {
            var current = key == active ? new Raw(" class=\"active\" aria-current=\"page\"") : new Raw(string.Empty);
            html.Add($"<a href=\"{context.Base}{path}\"{current}>{label}</a>");
        }

        html.Raw("</nav><div class=\"tools\">");
        if (context.Options.ReadOnly)
        {
            html.Raw("<span class=\"badge readonly\" title=\"Actions are disabled\">read-only</span>");
        }

        html.Raw("<label class=\"refresh\"><input type=\"checkbox\" id=\"auto-refresh\"> auto-refresh</label></div></header><main>");
        if (context.Query("notice") is { } notice)
        {
            html.Add($"<p class=\"notice\" role=\"status\">{notice}</p>");
        }

        html.Raw(body.ToString());
        html.Add($"</main><footer>Keel · {context.EngineName} · times in UTC · {Format.Time(context.Now)}</footer></body></html>");
        return html.ToString();
    }
}
