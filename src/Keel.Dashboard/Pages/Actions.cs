using System.Globalization;
using Keel.Dashboard.Internal;
using Microsoft.AspNetCore.Http;

namespace Keel.Dashboard.Pages;

/// <summary>
/// Every state-changing request (POST, antiforgery-checked and refused in read-only mode before it gets here). Each
/// goes through <see cref="IKeelAdmin"/> or <see cref="IKeelRecurring"/>, so form values reach SQL only as
/// parameters. Actions on more than one job show a confirmation page first, so they are confirmed without script.
/// </summary>
internal static class Actions
{
    private const int MaxSelected = 1000;
    private const int ConfirmCountLimit = 1000;

    public static async Task HandleAsync(DashboardContext context)
    {
        var form = await context.Http.Request.ReadFormAsync(context.Aborted);
        var action = context.Http.Request.RouteValues["action"] as string;
        var returnUrl = form["return"].ToString();
        string Value(string name) => form[name].ToString().Trim() is { Length: > 0 } v ? v : throw new DashboardException(400, $"the form lacks '{name}'");
        string? Optional(string name) => form[name].ToString().Trim() is { Length: > 0 } v ? v : null;
        var confirmed = form["confirm"] == "yes";

        switch (action)
        {
            case "queue-pause":
                {
                    var queue = Value("queue");
                    if (queue.Contains('*', StringComparison.Ordinal))
                    {
                        throw new DashboardException(400, $"'{queue}' is not a queue name: a queue name has no '*' (pause the queues one by one)");
                    }

                    await context.Admin.PauseQueueAsync(queue, context.Aborted);
                    context.RedirectBack(returnUrl, $"Paused queue {queue}.");
                    return;
                }

            case "queue-resume":
                await context.Admin.ResumeQueueAsync(Value("queue"), context.Aborted);
                context.RedirectBack(returnUrl, $"Resumed queue {Value("queue")}.");
                return;
            case "retry":
                {
                    var ids = Ids(form);
                    if (ids.Count > 1 && !confirmed)
                    {
                        await ConfirmAsync(context, form, $"Retry {ids.Count} failed jobs?", "Retry them");
                        return;
                    }

                    var retried = await context.Admin.RetryJobsAsync(ids, cancellationToken: context.Aborted);
                    context.RedirectBack(returnUrl, Retried(retried));
                    return;
                }

            case "discard":
                {
                    var ids = Ids(form);
                    var state = States.Parse(Value("state"));
                    if (state is JobState.Claimed or JobState.Finished or JobState.Discarded)
                    {
                        throw new DashboardException(400, $"{States.Label(state).ToLowerInvariant()} jobs cannot be discarded");
                    }

                    if (ids.Count > 1 && !confirmed)
                    {
                        await ConfirmAsync(context, form, $"Discard {ids.Count} {States.Label(state).ToLowerInvariant()} jobs? They will not run.", "Discard them");
                        return;
                    }

                    var discarded = await context.Admin.DiscardJobsAsync(ids, states: [state], cancellationToken: context.Aborted);
                    context.RedirectBack(returnUrl, Discarded(discarded));
                    return;
                }

            case "bulk":
                await BulkAsync(context, form, Value("op"), confirmed, returnUrl);
                return;
            case "run-now":
                {
                    var id = DashboardContext.ParseId(Value("id"), "job");
                    if (!await context.Admin.RunJobNowAsync(id, context.Aborted))
                    {
                        throw new DashboardException(409, $"Job {id} is neither scheduled nor blocked (any more), so it cannot be run now.");
                    }

                    context.RedirectBack(returnUrl, $"Job {id} is ready to run now.");
                    return;
                }

            case "cancel":
                {
                    var id = DashboardContext.ParseId(Value("id"), "job");
                    var resume = Optional("resume") is "true" or "on";
                    var result = await context.Admin.CancelAsync(id, new CancelOptions { Reason = Optional("reason") ?? (resume ? "stopped from the dashboard, to resume" : "cancelled from the dashboard"), Resume = resume }, context.Aborted);
                    switch (result)
                    {
                        case CancelResult.NotFound:
                            throw new DashboardException(404, $"There is no job {id}.");
                        case CancelResult.AlreadyEnded:
                            throw new DashboardException(409, $"Job {id} has already ended (finished, failed or discarded): there is nothing to cancel.");
                        case CancelResult.Cancelled:
                            context.RedirectBack(returnUrl, $"Cancelled job {id} before it started.");
                            return;
                        case CancelResult.NotRunning:
                            throw new DashboardException(409, $"Job {id} is not running: only a running job can be stopped to resume.");
                        case CancelResult.Requested when resume:
                            context.RedirectBack(returnUrl, $"Asked job {id} to stop; it goes back to its queue with its checkpoint once its run ends.");
                            return;
                        default:
                            context.RedirectBack(returnUrl, $"Asked job {id} to stop; it is discarded once its run ends.");
                            return;
                    }
                }

            case "release":
                {
                    var claim = DashboardContext.ParseId(Value("claim"), "claim");
                    var released = await context.Admin.ReleaseClaimsAsync([claim], context.Aborted);
                    if (released.Total == 0)
                    {
                        throw new DashboardException(409, $"Claim {claim} no longer exists: its job finished, failed or was recovered meanwhile.");
                    }

                    context.RedirectBack(returnUrl, "Released the job back to ready.");
                    return;
                }

            case "fail":
                {
                    var claim = DashboardContext.ParseId(Value("claim"), "claim");
                    var failed = await context.Admin.FailClaimsAsync([claim], Optional("reason") ?? "failed from the dashboard", context.Aborted);
                    if (failed.Total == 0)
                    {
                        throw new DashboardException(409, $"Claim {claim} no longer exists: its job finished, failed or was recovered meanwhile.");
                    }

                    context.RedirectBack(returnUrl, "Marked the job failed.");
                    return;
                }

            case "release-stale":
                {
                    var stale = await context.Admin.ListClaimsAsync(staleOnly: true, cancellationToken: context.Aborted);
                    if (!confirmed)
                    {
                        await ConfirmAsync(context, form, $"Release {stale.Count} stale claims back to ready? Their processes have stopped heartbeating.", "Release them");
                        return;
                    }

                    var released = stale.Count == 0 ? Storage.RecoveryResult.None : await context.Admin.ReleaseClaimsAsync([.. stale.Select(c => c.ClaimId)], context.Aborted);
                    context.RedirectBack(returnUrl, $"Released {released.Total} stale claims.");
                    return;
                }

            case "recurring-run":
                {
                    var key = Value("key");
                    try
                    {
                        var job = await context.Recurring.RunNowAsync(key, context.Aborted);
                        context.RedirectBack(returnUrl, $"Enqueued job {job} for recurring task {key}.");
                    }
                    catch (InvalidOperationException e)
                    {
                        throw new DashboardException(409, "Cannot run it now: " + e.Message);
                    }

                    return;
                }

            default:
                throw new DashboardException(400, $"unknown action '{action}'");
        }
    }

    private static async Task BulkAsync(DashboardContext context, IFormCollection form, string op, bool confirmed, string returnUrl)
    {
        var state = States.Parse(form["state"].ToString());
        if (state != JobState.Failed)
        {
            throw new DashboardException(400, "bulk actions apply to failed jobs");
        }

        var query = JobQuery.Parse(state, name => form[name].ToString().Trim() is { Length: > 0 } v ? v : null);
        switch (op)
        {
            case "retry-selected":
            case "discard-selected":
                {
                    var ids = Ids(form);
                    var retry = op == "retry-selected";
                    if (ids.Count > 1 && !confirmed)
                    {
                        await ConfirmAsync(context, form, retry ? $"Retry {ids.Count} selected failed jobs?" : $"Discard {ids.Count} selected failed jobs? They will not run again.", retry ? "Retry them" : "Discard them");
                        return;
                    }

                    var done = retry
                        ? await context.Admin.RetryJobsAsync(ids, cancellationToken: context.Aborted)
                        : await context.Admin.DiscardJobsAsync(ids, states: [JobState.Failed], cancellationToken: context.Aborted);
                    context.RedirectBack(returnUrl, retry ? Retried(done) : Discarded(done));
                    return;
                }

            case "retry-all":
            case "discard-all":
                {
                    var retry = op == "retry-all";
                    if (!confirmed)
                    {
                        // Counting stops early: the page says "1,000+" rather than walking every failed job.
                        var matching = await context.Storage.JobsListAsync(query.List(null, ConfirmCountLimit + 1), context.Aborted);
                        var count = Format.Count(matching.Count, ConfirmCountLimit);
                        await ConfirmAsync(context, form, $"{(retry ? "Retry" : "Discard")} all {count} failed jobs matching: {query.Describe()}?", retry ? "Retry all" : "Discard all");
                        return;
                    }

                    var done = retry
                        ? await context.Admin.RetryJobsAsync(null, query.Filter, cancellationToken: context.Aborted)
                        : await context.Admin.DiscardJobsAsync(null, query.Filter, [JobState.Failed], cancellationToken: context.Aborted);
                    context.RedirectBack(returnUrl, retry ? Retried(done) : Discarded(done));
                    return;
                }

            default:
                throw new DashboardException(400, $"unknown bulk action '{op}'");
        }
    }

    private static List<long> Ids(IFormCollection form)
    {
        var values = form["ids"];
        if (values.Count == 0)
        {
            throw new DashboardException(400, "no job selected: tick at least one job first");
        }

        if (values.Count > MaxSelected)
        {
            throw new DashboardException(400, $"at most {MaxSelected} jobs can be selected at once; use \"all matching\" with a filter instead");
        }

        return [.. values.Select(v => DashboardContext.ParseId(v, "job")).Distinct()];
    }

    /// <summary>The confirmation page: the same form again, with a fresh token and <c>confirm=yes</c>.</summary>
    private static Task ConfirmAsync(DashboardContext context, IFormCollection form, string question, string button)
    {
        var html = new HtmlWriter();
        var action = context.Http.Request.RouteValues["action"] as string;
        var cancel = context.SafeReturnUrl(form["return"].ToString());
        html.Add($"<h1>Please confirm</h1><form class=\"confirm\" method=\"post\" action=\"{context.Base}/actions/{action}\"><p class=\"question\">{question}</p>{context.AntiforgeryField()}<input type=\"hidden\" name=\"confirm\" value=\"yes\">");
        foreach (var (name, values) in form)
        {
            if (name == "confirm" || name.StartsWith("__", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (var value in values)
            {
                html.Add($"<input type=\"hidden\" name=\"{name}\" value=\"{value}\">");
            }
        }

        html.Add($"<button type=\"submit\" class=\"danger\" id=\"confirm\">{button}</button> <a href=\"{cancel}\">Cancel</a></form>");
        return context.WritePageAsync("Confirm", string.Empty, html);
    }

    private static string Retried(long count) => count == 1 ? "Retried 1 job." : $"Retried {count.ToString("N0", CultureInfo.InvariantCulture)} jobs.";

    private static string Discarded(long count) => count == 1 ? "Discarded 1 job." : $"Discarded {count.ToString("N0", CultureInfo.InvariantCulture)} jobs.";
}
