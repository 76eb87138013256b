using System.Globalization;
using System.Text.Json;
using Keel.Dashboard.Internal;
using Microsoft.AspNetCore.Http;

namespace Keel.Dashboard.Pages;

/// <summary>One job: its fields, arguments (after the redaction hook), attempts, errors with stack traces, timeline and actions.</summary>
internal static class JobPage
{
    /// <summary>Arguments longer than this are shown as a preview with a download link, not pretty-printed in full.</summary>
    private const int PreviewChars = 64 * 1024;

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static async Task RenderAsync(DashboardContext context)
    {
        var id = DashboardContext.ParseId(context.Http.Request.RouteValues["id"] as string, "job");
        var job = await context.Storage.JobGetAsync(id, context.Aborted)
            ?? throw new DashboardException(404, $"There is no job {id}: it never existed, or it finished and was deleted (finished jobs are kept for ClearFinishedJobsAfter).");
        var now = context.Now;
        var html = new HtmlWriter();
        html.Add($"<h1>Job {job.Id} <code>{job.Kind}</code> {Components.Badge(job.State)}</h1>");
        Actions(context, html, job);

        html.Raw("<div class=\"columns\"><section><h2>Details</h2><dl class=\"fields\">");
        Field(html, "Queue", new Raw($"<a href=\"{HtmlWriter.Encode(context.Url("/jobs/ready", ("queue", job.Queue)))}\">{HtmlWriter.Encode(job.Queue)}</a>"));
        Field(html, "Priority", job.Priority.ToString(CultureInfo.InvariantCulture));
        Field(html, "Attempts", $"{job.Attempts} of {job.MaxAttempts}");
        Field(html, "Worker losses", job.WorkerLosses.ToString(CultureInfo.InvariantCulture));
        Field(html, "Enqueued", Components.Time(job.CreatedAt, now));
        if (job.ScheduledAt is { } scheduled)
        {
            Field(html, "Scheduled for", Components.Time(scheduled, now));
        }

        if (job.ClaimedByProcessId is { } process)
        {
            Field(html, "Running on", new Raw($"<a href=\"{HtmlWriter.Encode(context.Url("/processes"))}#process-{process}\">process {process}</a> since {Components.Time(job.ClaimedAt, now).Value}"));
            if (job.Progress is not null)
            {
                Field(html, "Progress", Components.Progress(job.Progress, job.ProgressMessage));
            }

            if (job.CancelRequested is { } cancel)
            {
                Field(html, "Cancelling", new Raw($"<span class=\"badge cancelling\">cancelling</span> {HtmlWriter.Encode(cancel)}"));
            }
        }

        if (job.FinishedAt is { } finished)
        {
            Field(html, "Finished", Components.Time(finished, now));
        }

        if (job.DiscardedAt is { } discarded)
        {
            Field(html, "Discarded", Components.Time(discarded, now));
        }

        if (job.ConcurrencyKey is { } concurrencyKey)
        {
            Field(html, "Concurrency key", new Raw($"<code>{HtmlWriter.Encode(concurrencyKey)}</code>"));
        }

        if (job.UniqueKey is { } uniqueKey)
        {
            Field(html, "Unique key", new Raw($"<code>{HtmlWriter.Encode(uniqueKey)}</code>"));
        }

        if (job.SharedLosses > 0)
        {
            Field(html, "Shared deaths", string.Create(CultureInfo.InvariantCulture, $"{job.SharedLosses}: its process died while it ran beside other jobs, charged to none of them; at the second it runs alone"));
        }

        if (job.Suspect)
        {
            Field(html, "Suspect", "yes: it was running when its process died, twice beside other jobs or once alone, so it runs alone until a run of it ends by itself");
        }

        if (job.BatchId is { } batch)
        {
            Field(html, "Batch", new Raw($"<a href=\"{HtmlWriter.Encode(context.Base)}/batch/{batch}\">batch {batch}</a>"));
        }

        html.Raw("</dl></section><section><h2>Timeline</h2><ol class=\"timeline\">");
        foreach (var entry in job.Timeline)
        {
            html.Add($"<li data-event=\"{entry.Event}\"><span class=\"when\">{Format.Time(entry.At)}</span> {entry.Description}</li>");
        }

        html.Raw("</ol></section></div>");
        Dependencies(context, html, "Parents", "the jobs it waits for", "parents", job.Parents, d => d.ParentId);
        Dependencies(context, html, "Children", "the jobs that wait for it", "children", job.Children, d => d.ChildId);
        Runs(context, html, job);
        Output(html, job);

        var args = Args(context, job);
        var download = context.Url($"/job/{job.Id}/args");
        html.Add($"<section><h2>Arguments <span class=\"count\">{FormatBytes(System.Text.Encoding.UTF8.GetByteCount(args))}</span></h2>");
        if (args.Length > PreviewChars)
        {
            // Megabytes of JSON would make the page as large, and pretty-printing it costs more than the page: a preview.
            html.Add($"<p class=\"args-note muted\">Showing the first {FormatBytes(PreviewChars)} as stored. <a id=\"args-download\" href=\"{download}\" download=\"job-{job.Id}-args.json\">Download all {FormatBytes(System.Text.Encoding.UTF8.GetByteCount(args))}</a></p>");
            html.Add($"<pre class=\"args\" id=\"args\">{args[..PreviewChars]}…</pre></section>");
        }
        else
        {
            html.Add($"<pre class=\"args\" id=\"args\">{Pretty(args)}</pre><p class=\"muted\"><a id=\"args-download\" href=\"{download}\" download=\"job-{job.Id}-args.json\">Download</a></p></section>");
        }

        html.Add($"<section><h2>Errors <span class=\"count\">{job.Errors.Count}</span></h2>");
        if (job.Errors.Count == 0)
        {
            html.Raw("<p class=\"muted\">No attempt failed.</p>");
        }

        foreach (var error in job.Errors.Reverse())
        {
            html.Add($"""
                <article class="error-entry"><header>Attempt {error.Attempt} · <code>{error.ExceptionType}</code>{(error.Cause is { } cause ? new Raw($" · cause <code>{HtmlWriter.Encode(cause)}</code>") : new Raw(string.Empty))} · {Components.Time(error.OccurredAt, now)}</header>
                <p class="error-message">{error.Message}</p>
                """);
            if (!string.IsNullOrEmpty(error.StackTrace))
            {
                html.Add($"<details><summary>Stack trace</summary><pre class=\"stack\">{error.StackTrace}</pre></details>");
            }

            html.Raw("</article>");
        }

        html.Raw("</section>");
        await context.WritePageAsync($"Job {job.Id}", States.Slug(job.State), html);
    }

    /// <summary>The result the job stored and the lines its runs logged through <see cref="JobContext.Logger"/>.</summary>
    private static void Output(HtmlWriter html, JobInfo job)
    {
        if (job.Result is { } result)
        {
            html.Add($"<section><h2>Result</h2><pre class=\"args\" id=\"result\">{Pretty(result)}</pre></section>");
        }

        if (job.Logs.Count == 0)
        {
            return;
        }

        html.Add($"<section><h2>Log <span class=\"count\">{job.Logs.Count}</span></h2><table class=\"job-log\"><thead><tr><th class=\"num\">Attempt</th><th>Time</th><th>Level</th><th>Message</th></tr></thead><tbody>");
        foreach (var line in job.Logs)
        {
            html.Add($"<tr data-level=\"{line.Level}\"><td class=\"num\">{line.Attempt}</td><td>{Format.Time(line.At)}</td><td>{line.Level}</td><td>{line.Message}</td></tr>");
        }

        html.Raw("</tbody></table></section>");
    }

    /// <summary>A job's edges: the other job, what the edge waits for, its policy, how the parent settled.</summary>
    private static void Dependencies(DashboardContext context, HtmlWriter html, string title, string meaning, string css, IReadOnlyList<JobDependencyInfo> edges, Func<JobDependencyInfo, long> other)
    {
        if (edges.Count == 0)
        {
            return;
        }

        html.Add($"<section class=\"{css}\"><h2>{title} <span class=\"count\">{edges.Count}</span> <span class=\"muted\">{meaning}</span></h2>");
        html.Raw("<table class=\"dependencies\"><thead><tr><th>Job</th><th>Waits for</th><th>Otherwise</th><th>Parent settled</th></tr></thead><tbody>");
        foreach (var edge in edges)
        {
            var id = other(edge);
            html.Add($"<tr data-job=\"{id}\"><td><a href=\"{HtmlWriter.Encode(context.Base)}/job/{id}\">job {id}</a></td><td>{edge.When.ToString()}</td><td>{(edge.OnUnmet == UnmetPolicy.Run ? "run anyway" : "discard")}</td><td>{edge.Outcome?.ToString() ?? "not yet"}</td></tr>");
        }

        html.Raw("</tbody></table></section>");
    }

    /// <summary>Every run: who ran it, how it ended, whether it was charged, what it shared its process with.</summary>
    private static void Runs(DashboardContext context, HtmlWriter html, JobInfo job)
    {
        if (job.Runs.Count == 0)
        {
            return;
        }

        html.Add($"<section><h2>Runs <span class=\"count\">{job.Runs.Count}</span></h2><table class=\"runs\"><thead><tr><th>Attempt</th><th>Outcome</th><th>Cause</th><th>Charged</th><th>Process</th><th>Started</th><th>Ended</th><th>Shared with</th></tr></thead><tbody>");
        foreach (var run in job.Runs)
        {
            var process = run.Runner is { } r ? $"{r.Name} (pid {r.Pid} on {r.Host})" : string.Empty;
            html.Add($"<tr data-outcome=\"{run.Outcome}\"><td class=\"num\">{run.Attempt}</td><td>{run.Outcome}</td><td><code>{run.Cause ?? string.Empty}</code></td><td>{(run.Charged ? "yes" : "no")}</td><td>{process}</td>");
            html.Add($"<td>{(run.StartedAt is { } started ? Format.Time(started) : string.Empty)}</td><td>{(run.EndedAt is { } ended ? Format.Time(ended) : string.Empty)}</td><td>");
            foreach (var other in run.SharedWith)
            {
                html.Add($"<a href=\"{context.Url($"/job/{other}")}\">{other}</a> ");
            }

            html.Raw("</td></tr>");
        }

        html.Raw("</tbody></table></section>");
    }

    /// <summary>A job's arguments as a JSON download (after <see cref="KeelDashboardOptions.RedactArgs"/>): the whole of them, however large.</summary>
    public static async Task ArgsAsync(DashboardContext context)
    {
        var id = DashboardContext.ParseId(context.Http.Request.RouteValues["id"] as string, "job");
        var job = await context.Storage.JobGetAsync(id, context.Aborted)
            ?? throw new DashboardException(404, $"There is no job {id}: it never existed, or it finished and was deleted (finished jobs are kept for ClearFinishedJobsAfter).");
        var response = context.Http.Response;
        DashboardContext.SecurityHeaders(response);
        response.ContentType = "application/json; charset=utf-8";
        response.Headers.ContentDisposition = $"attachment; filename=\"job-{id}-args.json\"";
        await response.WriteAsync(Args(context, job), context.Aborted);
    }

    private static string Args(DashboardContext context, JobInfo job) => context.Options.RedactArgs is { } redact ? redact(job, job.Args) : job.Args;

    private static string FormatBytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MB"),
    };

    private static void Actions(DashboardContext context, HtmlWriter html, JobInfo job)
    {
        if (!context.CanAct)
        {
            return;
        }

        var id = job.Id.ToString(CultureInfo.InvariantCulture);
        html.Raw("<p class=\"job-actions\">");
        switch (job.State)
        {
            case JobState.Failed:
                html.Add($"{Components.ActionButton(context, "retry", "Retry", [("ids", id)])}{Components.ActionButton(context, "discard", "Discard", [("ids", id), ("state", "failed")], "danger", $"Discard job {id}?")}");
                break;
            case JobState.Scheduled:
            case JobState.Blocked:
                html.Add($"{Components.ActionButton(context, "run-now", "Run now", [("id", id)])}{Components.ActionButton(context, "discard", "Discard", [("ids", id), ("state", States.Slug(job.State))], "danger", $"Discard job {id}?")}");
                break;
            case JobState.Ready:
                html.Add($"{Components.ActionButton(context, "discard", "Discard", [("ids", id), ("state", "ready")], "danger", $"Discard job {id}?")}");
                break;
            case JobState.Claimed:
                if (job.CancelRequested is null)
                {
                    html.Add($"{Components.ActionButton(context, "cancel", "Cancel", [("id", id)], "danger", $"Cancel job {id}? Its run is asked to stop within a second, and the job is discarded.")} ");
                    html.Add($"{Components.ActionButton(context, "cancel", "Stop & resume later", [("id", id), ("resume", "true")], "secondary", $"Stop job {id}? Its run is asked to stop within a second, and the job goes back to its queue with its checkpoint.")} ");
                }

                html.Add($"<a href=\"{context.Base}/jobs/in-progress\">Release or fail it on the in-progress page</a>");
                break;
        }

        html.Raw("</p>");
    }

    private static void Field(HtmlWriter html, string name, string value) => html.Add($"<dt>{name}</dt><dd>{value}</dd>");

    private static void Field(HtmlWriter html, string name, Raw value) => html.Add($"<dt>{name}</dt><dd>{value}</dd>");

    private static string Pretty(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(document.RootElement, Indented);
        }
        catch (JsonException)
        {
            return json; // Not JSON (a redaction hook may return any text): shown as is.
        }
    }
}
