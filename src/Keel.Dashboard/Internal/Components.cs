using System.Globalization;
using System.Text;

namespace Keel.Dashboard.Internal;

/// <summary>Pieces several pages share: state badges, action buttons, charts.</summary>
internal static class Components
{
    public static Raw Badge(JobState state)
    {
        var slug = States.Slug(state);
        return new Raw($"<span class=\"badge state-{slug}\">{HtmlWriter.Encode(States.Label(state).ToLowerInvariant())}</span>");
    }

    public static Raw Age(TimeSpan age, DateTimeOffset? at = null)
        => new(at is { } time
            ? $"<span title=\"{HtmlWriter.Encode(Format.Time(time))}\">{HtmlWriter.Encode(Format.Age(age))}</span>"
            : HtmlWriter.Encode(Format.Age(age)));

    public static Raw Time(DateTimeOffset? time, DateTimeOffset now)
    {
        if (time is not { } t)
        {
            return new Raw("<span class=\"muted\">—</span>");
        }

        var delta = now - t;
        var relative = delta >= TimeSpan.Zero ? Format.Age(delta) + " ago" : "in " + Format.Age(-delta);
        return new Raw($"<time datetime=\"{HtmlWriter.Encode(t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture))}\" title=\"{HtmlWriter.Encode(Format.Time(t))}\">{HtmlWriter.Encode(relative)}</time>");
    }

    /// <summary>
    /// A one-button form that posts an action (with the antiforgery token and the page to return to). With
    /// <paramref name="confirm"/>, the script asks first; the server does not rely on it.
    /// </summary>
    public static Raw ActionButton(DashboardContext context, string action, string label, IEnumerable<(string Name, string Value)> fields, string css = "", string? confirm = null)
    {
        if (!context.CanAct)
        {
            return new Raw(string.Empty);
        }

        var html = new HtmlWriter();
        var confirmAttribute = confirm is null ? new Raw(string.Empty) : new Raw($" data-confirm=\"{HtmlWriter.Encode(confirm)}\"");
        html.Add($"<form method=\"post\" class=\"inline\" action=\"{context.Base}/actions/{action}\"{confirmAttribute}>{context.AntiforgeryField()}<input type=\"hidden\" name=\"return\" value=\"{context.Here}\">");
        foreach (var (name, value) in fields)
        {
            html.Add($"<input type=\"hidden\" name=\"{name}\" value=\"{value}\">");
        }

        html.Add($"<button type=\"submit\" class=\"{css}\">{label}</button></form>");
        return new Raw(html.ToString());
    }

    /// <summary>
    /// The one form a table's row buttons submit (<see cref="RowButton"/>): the token and the return address once per
    /// page instead of once per button, which keeps a 500-row page small.
    /// </summary>
    public static Raw RowActionsForm(DashboardContext context, params (string Name, string Value)[] fields)
    {
        if (!context.CanAct)
        {
            return new Raw(string.Empty);
        }

        var html = new HtmlWriter();
        html.Add($"<form id=\"row-actions\" method=\"post\" action=\"{context.Base}/actions/none\">{context.AntiforgeryField()}<input type=\"hidden\" name=\"return\" value=\"{context.Here}\">");
        foreach (var (name, value) in fields)
        {
            html.Add($"<input type=\"hidden\" name=\"{name}\" value=\"{value}\">");
        }

        html.Raw("</form>");
        return new Raw(html.ToString());
    }

    /// <summary>A row's button: submits <see cref="RowActionsForm"/> to <paramref name="action"/> with one name and value.</summary>
    public static Raw RowButton(DashboardContext context, string action, string label, string name, string value, string css = "", string? confirm = null)
    {
        if (!context.CanAct)
        {
            return new Raw(string.Empty);
        }

        var confirmAttribute = confirm is null ? string.Empty : $" data-confirm=\"{HtmlWriter.Encode(confirm)}\"";
        return new Raw($"<button type=\"submit\" form=\"row-actions\" formaction=\"{HtmlWriter.Encode(context.Base)}/actions/{HtmlWriter.Encode(action)}\" name=\"{HtmlWriter.Encode(name)}\" value=\"{HtmlWriter.Encode(value)}\" class=\"{HtmlWriter.Encode(css)}\"{confirmAttribute}>{HtmlWriter.Encode(label)}</button>");
    }

    /// <summary>A running job's progress as it last reported it: a bar, the percentage and its message; empty when it has not.</summary>
    public static Raw Progress(double? fraction, string? message)
    {
        if (fraction is not { } f)
        {
            return new Raw(string.Empty);
        }

        var html = new HtmlWriter();
        var value = f.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
        var percent = (f * 100).ToString("0", System.Globalization.CultureInfo.InvariantCulture);
        html.Add($"<span class=\"progress\"><progress value=\"{value}\" max=\"1\">{percent}%</progress> <span class=\"percent\">{percent}%</span>");
        if (message is not null)
        {
            html.Add($" <span class=\"muted\">{message}</span>");
        }

        html.Raw("</span>");
        return new Raw(html.ToString());
    }

    /// <summary>An inline SVG bar chart of one value per bucket, with the peak labelled and a tooltip per bar.</summary>
    public static Raw BarChart(string title, string id, IReadOnlyList<JobActivityPoint> points, Func<double, string> label, string css)
    {
        const double width = 600, height = 110, top = 4;
        var max = points.Count == 0 ? 0 : points.Max(p => p.Value);
        var barWidth = width / Math.Max(1, points.Count);
        var svg = new StringBuilder();
        var peak = max > 0 ? label(max) : "none";
        // The plot sits at the bottom of its figure (CSS), so charts side by side share a baseline however their titles
        // wrap; the axis labels are HTML text under it, readable at any width (text inside the SVG scales down with it).
        svg.Append(CultureInfo.InvariantCulture, $"<figure class=\"chart {css}\" id=\"{id}\"><figcaption><span>{HtmlWriter.Encode(title)}</span><span class=\"muted peak\">peak {HtmlWriter.Encode(peak)}</span></figcaption>");
        svg.Append(CultureInfo.InvariantCulture, $"<div class=\"plot\"><svg viewBox=\"0 0 {width} {height}\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{HtmlWriter.Encode(title)}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<line class=\"axis\" x1=\"0\" y1=\"{height}\" x2=\"{width}\" y2=\"{height}\"/>");
        for (var i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var h = max <= 0 ? 0 : Math.Max(p.Value > 0 ? 1.5 : 0, (height - top) * p.Value / max);
            var x = (i * barWidth) + 0.5;
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x:0.##}\" y=\"{height - h:0.##}\" width=\"{Math.Max(0.5, barWidth - 1):0.##}\" height=\"{h:0.##}\"><title>{HtmlWriter.Encode(p.Start.UtcDateTime.ToString("HH:mm", CultureInfo.InvariantCulture))}Z: {HtmlWriter.Encode(p.HasValue ? label(p.Value) : "no data")}</title></rect>");
        }

        svg.Append("</svg><div class=\"axis\"><span>60 min ago</span><span>now</span></div></div></figure>");
        return new Raw(svg.ToString());
    }
}

/// <summary>One bar of a chart.</summary>
/// <param name="Start">The bucket's start.</param>
/// <param name="Value">The bar's value.</param>
/// <param name="HasValue">False when the bucket had nothing to measure (no latency without finished jobs).</param>
internal readonly record struct JobActivityPoint(DateTimeOffset Start, double Value, bool HasValue = true);
