using System.Globalization;
using Keel.Storage;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Keel.Dashboard.Internal;

/// <summary>One dashboard request: the services it reads through, its options, its URLs and its response.</summary>
internal sealed class DashboardContext(HttpContext http, KeelDashboardOptions options, string prefix)
{
    private Raw? _antiforgeryField;

    public HttpContext Http { get; } = http;

    public KeelDashboardOptions Options { get; } = options;

    /// <summary>The dashboard's root URL path, e.g. <c>/app/keel</c>, without a trailing slash.</summary>
    public string Base { get; } = http.Request.PathBase.Add(prefix).Value?.TrimEnd('/') ?? string.Empty;

    public IKeelStorage Storage => Http.RequestServices.GetRequiredService<IKeelStorage>();

    public IKeelAdmin Admin => Http.RequestServices.GetRequiredService<IKeelAdmin>();

    public IKeelRecurring Recurring => Http.RequestServices.GetRequiredService<IKeelRecurring>();

    public KeelOptions Keel => Http.RequestServices.GetRequiredService<IOptions<KeelOptions>>().Value;

    public DateTimeOffset Now => (Http.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();

    /// <summary>The store's engine name for the footer; empty when the store cannot even be built (the error page still renders).</summary>
    public string EngineName
    {
        get
        {
            try
            {
                return Storage.Engine;
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                return string.Empty;
            }
        }
    }

    public CancellationToken Aborted => Http.RequestAborted;

    public bool CanAct => !Options.ReadOnly;

    /// <summary>A dashboard URL: <paramref name="path"/> under <see cref="Base"/>, with the non-empty query values.</summary>
    public string Url(string path, params (string Name, string? Value)[] query)
    {
        var url = Base + path;
        var parts = query.Where(q => !string.IsNullOrEmpty(q.Value)).Select(q => Uri.EscapeDataString(q.Name) + "=" + Uri.EscapeDataString(q.Value!)).ToList();
        return parts.Count == 0 ? url : url + "?" + string.Join('&', parts);
    }

    /// <summary>The current URL (path and query), where an action returns to.</summary>
    public string Here => Http.Request.PathBase + Http.Request.Path + Http.Request.QueryString;

    /// <summary>A trimmed query value; null when absent or empty.</summary>
    public string? Query(string name) => Http.Request.Query[name].ToString().Trim() is { Length: > 0 } value ? value : null;

    /// <summary>The hidden antiforgery field every form carries.</summary>
    public Raw AntiforgeryField()
    {
        if (_antiforgeryField is { } field)
        {
            return field;
        }

        var antiforgery = Http.RequestServices.GetRequiredService<IAntiforgery>();
        var tokens = antiforgery.GetAndStoreTokens(Http);
        _antiforgeryField = new Raw($"<input type=\"hidden\" name=\"{HtmlWriter.Encode(tokens.FormFieldName)}\" value=\"{HtmlWriter.Encode(tokens.RequestToken)}\">");
        return _antiforgeryField.Value;
    }

    public static long ParseId(string? text, string what)
        => long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0
            ? id
            : throw new DashboardException(400, $"'{text}' is not a {what} id: expected a positive whole number");

    /// <summary>Parses a time from a filter: <c>2026-11-27T03:05</c> (read as UTC) or with an offset.</summary>
    public static DateTimeOffset? ParseTime(string? text, string field)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            ? time
            : throw new DashboardException(400, $"'{text}' in '{field}' is not a date and time: use e.g. 2026-11-27T03:05 (UTC)");
    }

    /// <summary>Writes a whole page in the dashboard's layout.</summary>
    public Task WritePageAsync(string title, string nav, HtmlWriter body, int status = 200)
    {
        var page = Layout.Render(this, title, nav, body);
        return WriteHtmlAsync(page, status);
    }

    /// <summary>Writes the message page for a refused or failed request: a sentence, never a stack trace.</summary>
    public Task WriteErrorAsync(int status, string message)
    {
        var body = new HtmlWriter();
        var heading = status switch
        {
            400 => "Bad request",
            403 => "Forbidden",
            404 => "Not found",
            409 => "Not possible",
            _ => "Something went wrong",
        };
        body.Add($"<h1>{heading}</h1><p class=\"error-message\">{message}</p><p><a href=\"{Base}/\">Back to the overview</a></p>");
        return WritePageAsync(heading, string.Empty, body, status);
    }

    private async Task WriteHtmlAsync(string html, int status)
    {
        var response = Http.Response;
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        SecurityHeaders(response);
        await response.WriteAsync(html, Aborted);
    }

    /// <summary>No inline script or style anywhere, so a strict policy holds; no framing (clickjacking).</summary>
    public static void SecurityHeaders(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers["Referrer-Policy"] = "same-origin";
        response.Headers.CacheControl = "no-store";
    }

    /// <summary>After an action: back to where the form was (never elsewhere), with a notice.</summary>
    public void RedirectBack(string? returnUrl, string notice)
    {
        var target = RemoveNotice(SafeReturnUrl(returnUrl));
        target += (target.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "notice=" + Uri.EscapeDataString(notice);
        Http.Response.StatusCode = StatusCodes.Status303SeeOther;
        Http.Response.Headers.Location = target;
    }

    /// <summary>
    /// A page of this dashboard to go back to: the posted address when it is one (never another host: <c>//host</c>
    /// or a backslash would leave the site when the dashboard is mounted at the root), else the overview.
    /// </summary>
    public string SafeReturnUrl(string? returnUrl)
        => returnUrl is not null && returnUrl.StartsWith(Base + "/", StringComparison.Ordinal) && !returnUrl.StartsWith("//", StringComparison.Ordinal) && !returnUrl.Contains('\\', StringComparison.Ordinal)
            ? returnUrl
            : Base + "/";

    private static string RemoveNotice(string url)
    {
        var q = url.IndexOf('?', StringComparison.Ordinal);
        if (q < 0)
        {
            return url;
        }

        var kept = url[(q + 1)..].Split('&').Where(p => !p.StartsWith("notice=", StringComparison.Ordinal)).ToList();
        return kept.Count == 0 ? url[..q] : url[..q] + "?" + string.Join('&', kept);
    }
}
