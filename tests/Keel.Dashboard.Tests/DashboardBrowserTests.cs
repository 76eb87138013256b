using Keel.Dashboard.Tests.Infrastructure;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Keel.Dashboard.Tests;

/// <summary>
/// The dashboard in a real Chromium against a real database: every page shows what is stored, and every action
/// changes the database as it says (checked through Keel's own API afterwards).
/// </summary>
public abstract class DashboardBrowserTests(BrowserFixture browser)
{
    protected abstract Engine Engine { get; }

    protected BrowserFixture Browser { get; } = browser;

    /// <summary>A page in a fresh context; single-action confirm() dialogs are accepted, as a person would.</summary>
    protected async Task<(IBrowserContext Context, IPage Page)> OpenAsync(DashboardApp app)
    {
        var context = await Browser.NewContextAsync(app);
        var page = await context.NewPageAsync();
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
        return (context, page);
    }

    private static async Task<JobState> StateAsync(DashboardApp app, long id) => (await app.Client.GetJobAsync(id))!.State;

    [Fact]
    public async Task Every_page_shows_what_is_stored()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var ready = await app.Seed.ReadyAsync("ada@example.com");
        var scheduled = await app.Seed.ScheduledAsync("weekly-sales");
        var (_, blocked) = await app.Seed.BlockedAsync(7);
        var failed = (await app.Seed.FailedAsync(1))[0];
        var finished = (await app.Seed.FinishedAsync(1))[0];
        var discarded = await app.Seed.ReadyAsync("bob@example.com", "outbox");
        await app.Admin.DiscardJobsAsync([discarded]);
        var supervisor = await app.Seed.ProcessAsync("Supervisor", hostname: "lost-host");
        var lost = await app.Seed.ProcessAsync(heartbeatAge: TimeSpan.FromMinutes(5), supervisor: supervisor, hostname: "lost-host", pid: 31337);
        var claimed = (await app.Seed.ClaimedAsync(lost, "stuck"))[0];
        await app.Seed.AddRecurringAsync("nightly-report");

        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            // A blocked inline style or script (the Content-Security-Policy allows none) or a script error shows here.
            var consoleErrors = new List<string>();
            page.Console += (_, message) =>
            {
                if (message.Type == "error")
                {
                    consoleErrors.Add(message.Text);
                }
            };
            page.PageError += (_, error) => consoleErrors.Add(error);
            await page.GotoAsync("/keel/");
            await Expect(page.Locator("h1")).ToHaveTextAsync("Overview");
            await Expect(page.Locator(".card-value[data-state=ready]")).ToHaveTextAsync("2"); // the email and the first sync
            await Expect(page.Locator(".card-value[data-state=scheduled]")).ToHaveTextAsync("1");
            await Expect(page.Locator(".card-value[data-state=in-progress]")).ToHaveTextAsync("1");
            await Expect(page.Locator(".card-value[data-state=blocked]")).ToHaveTextAsync("1");
            await Expect(page.Locator(".card-value[data-state=failed]")).ToHaveTextAsync("1");
            await Expect(page.Locator(".card-value[data-state=finished]")).ToHaveTextAsync("1");
            await Expect(page.Locator(".card-value[data-state=discarded]")).ToHaveTextAsync("1");
            await Expect(page.Locator("#chart-throughput")).ToContainTextAsync("1 finished in the last hour");
            await Expect(page.Locator("#chart-failures")).ToContainTextAsync("1 failed attempts in the last hour");
            await Expect(page.Locator("#chart-latency rect")).ToHaveCountAsync(60);

            await page.GotoAsync("/keel/queues");
            await Expect(page.Locator("tr[data-queue=mail]")).ToContainTextAsync("running");
            await Expect(page.Locator("tr[data-queue=stuck] td").Nth(4)).ToHaveTextAsync("1");

            foreach (var (slug, id, text, rows) in new[]
            {
                ("ready", ready, "emails.welcome", 2), ("scheduled", scheduled, "reports.build", 1), ("blocked", blocked, "accounts.sync/7", 1),
                ("failed", failed, "System.TimeoutException", 1), ("finished", finished, "newsletters", 1), ("discarded", discarded, "outbox", 1),
                ("in-progress", claimed.JobId, "stale", 1),
            })
            {
                await page.GotoAsync($"/keel/jobs/{slug}");
                await Expect(page.Locator($"tr[data-job='{id}']")).ToContainTextAsync(text);
                await Expect(page.Locator("tbody tr")).ToHaveCountAsync(rows);
            }

            await page.GotoAsync("/keel/jobs/in-progress");
            await Expect(page.Locator($"tr[data-job='{claimed.JobId}']")).ToContainTextAsync("pid 31337 on lost-host");

            await page.GotoAsync($"/keel/job/{failed}");
            await Expect(page.Locator("h1")).ToContainTextAsync("failed");
            await Expect(page.Locator("article.error-entry")).ToContainTextAsync("the report server did not answer within 30 s");
            await Expect(page.Locator("pre.stack")).ToContainTextAsync("ReportServer.RenderAsync");
            await Expect(page.Locator("ol.timeline")).ToContainTextAsync("attempt 1 failed: System.TimeoutException");
            await page.GotoAsync($"/keel/job/{ready}");
            await Expect(page.Locator("#args")).ToContainTextAsync("ada@example.com");

            await page.GotoAsync("/keel/processes");
            await Expect(page.Locator($"tr[data-process='{lost}']")).ToContainTextAsync("stale");
            await Expect(page.Locator($"tr[data-process='{lost}'] span.tree")).ToHaveCountAsync(1); // shown under its supervisor
            await Expect(page.Locator($"tr[data-process='{supervisor}']")).ToContainTextAsync("Supervisor");

            await page.GotoAsync("/keel/recurring");
            await Expect(page.Locator("tr[data-task=nightly-report]")).ToContainTextAsync("0 2 * * *");
            await Expect(page.Locator("tr[data-task=nightly-report]")).ToContainTextAsync("never");
            Assert.Empty(consoleErrors);
        }
    }

    [Fact]
    public async Task A_job_page_lists_its_runs_with_their_process_cause_charge_and_neighbours()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var dead = await app.Seed.ProcessAsync(pid: 31337, hostname: "lost-host");
        var claims = await app.Seed.ClaimedAsync(dead, "imports", count: 2);
        await app.Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("process-exited", "killed by signal 9 (SIGKILL)"), null), CancellationToken.None);

        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync($"/keel/job/{claims[0].JobId}");
            var run = page.Locator("table.runs tbody tr[data-outcome=lost]");
            await Expect(run).ToHaveCountAsync(1);
            await Expect(run).ToContainTextAsync("process-exited");
            await Expect(run).ToContainTextAsync("pid 31337 on lost-host");
            await Expect(run.Locator("td").Nth(3)).ToHaveTextAsync("no");
            await Expect(run.Locator($"a[href$='/job/{claims[1].JobId}']")).ToHaveCountAsync(1);
            await Expect(page.Locator("dl.fields")).ToContainTextAsync("Shared deaths");
            await Expect(page.Locator("dl.fields")).Not.ToContainTextAsync("Suspect");
            await Expect(page.Locator("ol.timeline")).ToContainTextAsync("attempt 1 lost on");

            // A second shared death makes it a suspect: it runs alone from then on.
            var again = await app.Seed.ProcessAsync(pid: 31338, hostname: "lost-host");
            Assert.Equal(2, (await app.Storage.JobsClaimAsync(new JobsClaimParams(again, QueueFilter.Parse("imports"), 2, null), CancellationToken.None)).Count);
            await app.Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(again, new WorkerLostCause("process-exited", "killed by signal 9 (SIGKILL)"), null), CancellationToken.None);
            await page.ReloadAsync();
            await Expect(page.Locator("dl.fields")).ToContainTextAsync("runs alone");
        }
    }

    [Fact]
    public async Task Failed_jobs_filter_by_queue_kind_and_error_type()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var timeouts = await app.Seed.FailedAsync(2, "reports");
        var refused = await app.Seed.FailedAsync(3, "billing", "System.Net.Http.HttpRequestException", "503 from the payment provider");
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/jobs/failed");
            await Expect(page.Locator("tbody tr")).ToHaveCountAsync(5);

            await page.FillAsync("input[name=queue]", "billing");
            await page.ClickAsync("form.filters button[type=submit]");
            await Expect(page.Locator("tbody tr")).ToHaveCountAsync(3);
            foreach (var id in refused)
            {
                await Expect(page.Locator($"tr[data-job='{id}']")).ToBeVisibleAsync();
            }

            await page.FillAsync("input[name=queue]", string.Empty);
            await page.FillAsync("input[name=error]", "System.TimeoutException");
            await page.ClickAsync("form.filters button[type=submit]");
            await Expect(page.Locator("tbody tr")).ToHaveCountAsync(2);
            await Expect(page.Locator($"tr[data-job='{timeouts[0]}']")).ToBeVisibleAsync();

            await page.GotoAsync("/keel/jobs/failed?kind=emails.welcome");
            await Expect(page.Locator("p.empty")).ToContainTextAsync("match this filter");

            var future = DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture);
            await page.GotoAsync($"/keel/jobs/failed?from={future}");
            await Expect(page.Locator("p.empty")).ToBeVisibleAsync();
        }
    }

    [Fact]
    public async Task A_failed_job_is_retried_and_another_discarded_one_at_a_time()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var failed = await app.Seed.FailedAsync(2);
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/jobs/failed");
            await page.ClickAsync($"tr[data-job='{failed[0]}'] button:has-text('Retry')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Retried 1 job.");
            Assert.Equal(JobState.Ready, await StateAsync(app, failed[0]));

            await page.ClickAsync($"tr[data-job='{failed[1]}'] button:has-text('Discard')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Discarded 1 job.");
            Assert.Equal(JobState.Discarded, await StateAsync(app, failed[1]));
            await Expect(page.Locator("tbody tr")).ToHaveCountAsync(0);
        }
    }

    [Fact]
    public async Task Bulk_actions_ask_for_confirmation_before_changing_anything()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var reports = await app.Seed.FailedAsync(3, "reports");
        var billing = await app.Seed.FailedAsync(2, "billing", "System.InvalidOperationException", "card declined");
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            // A selection: two of the three report jobs.
            await page.GotoAsync("/keel/jobs/failed?queue=reports");
            await page.CheckAsync($"tr[data-job='{reports[0]}'] input[name=ids]");
            await page.CheckAsync($"tr[data-job='{reports[1]}'] input[name=ids]");
            await page.ClickAsync("#bulk button[value=retry-selected]");
            await Expect(page.Locator("h1")).ToHaveTextAsync("Please confirm");
            await Expect(page.Locator("p.question")).ToHaveTextAsync("Retry 2 selected failed jobs?");
            Assert.Equal(JobState.Failed, await StateAsync(app, reports[0])); // nothing happens before the confirmation
            await page.ClickAsync("#confirm");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Retried 2 jobs.");
            Assert.Equal([JobState.Ready, JobState.Ready, JobState.Failed], [await StateAsync(app, reports[0]), await StateAsync(app, reports[1]), await StateAsync(app, reports[2])]);

            // Everything matching a filter: the billing jobs only.
            await page.GotoAsync("/keel/jobs/failed?queue=billing");
            await page.ClickAsync("#bulk button[value=retry-all]");
            await Expect(page.Locator("p.question")).ToHaveTextAsync("Retry all 2 failed jobs matching: queue = billing?");
            await page.ClickAsync("#confirm");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Retried 2 jobs.");
            Assert.All(billing, id => Assert.Equal(JobState.Ready, StateAsync(app, id).GetAwaiter().GetResult()));
            Assert.Equal(JobState.Failed, await StateAsync(app, reports[2]));

            // Select all (the script), then discard, confirmed.
            var more = await app.Seed.FailedAsync(2, "reports");
            await page.GotoAsync("/keel/jobs/failed");
            await page.CheckAsync("input[data-select-all]");
            await Expect(page.Locator("input[name=ids]:checked")).ToHaveCountAsync(3);
            await page.ClickAsync("#bulk button[value=discard-selected]");
            await Expect(page.Locator("p.question")).ToContainTextAsync("Discard 3 selected failed jobs?");
            await page.ClickAsync("#confirm");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Discarded 3 jobs.");
            Assert.All(more.Append(reports[2]), id => Assert.Equal(JobState.Discarded, StateAsync(app, id).GetAwaiter().GetResult()));
        }
    }

    [Fact]
    public async Task A_queue_is_paused_and_resumed()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        await app.Seed.ReadyAsync();
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/queues");
            await page.ClickAsync("tr[data-queue=mail] button:has-text('Pause')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Paused queue mail.");
            await Expect(page.Locator("tr[data-queue=mail]")).ToContainTextAsync("paused");
            Assert.True((await app.Admin.ListQueuesAsync()).Single(q => q.Name == "mail").Paused);

            await page.ClickAsync("tr[data-queue=mail] button:has-text('Resume')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Resumed queue mail.");
            Assert.False((await app.Admin.ListQueuesAsync()).Single(q => q.Name == "mail").Paused);
        }
    }

    [Fact]
    public async Task Known_queues_stay_listed_when_their_work_is_done_and_a_queue_is_paused_before_it_has_jobs()
    {
        await using var app = await DashboardApp.StartAsync(Engine, services: s => s.PostConfigure<KeelOptions>(o => o.Workers.Add(new WorkerOptions { Queues = ["critical", "mail*"] })));
        await app.Seed.FinishedAsync(2, "newsletters"); // all work done: nothing ready, running or failed
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/queues");
            await Expect(page.Locator("tr[data-queue=newsletters]")).ToContainTextAsync("idle");
            await Expect(page.Locator("tr[data-queue=critical]")).ToContainTextAsync("idle"); // named by a worker, no job yet
            await Expect(page.Locator("tbody tr")).ToHaveCountAsync(2); // "mail*" is a prefix, not a queue

            await page.ClickAsync("tr[data-queue=newsletters] button:has-text('Pause')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Paused queue newsletters.");
            await Expect(page.Locator("tr[data-queue=newsletters]")).ToContainTextAsync("paused");

            await page.FillAsync("#pause-ahead input[name=queue]", "reports");
            await page.ClickAsync("#pause-ahead button");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Paused queue reports.");
            await Expect(page.Locator("tr[data-queue=reports]")).ToContainTextAsync("paused");
            Assert.Equal(["newsletters", "reports"], (await app.Admin.ListQueuesAsync()).Where(q => q.Paused).Select(q => q.Name));

            await page.GotoAsync("/keel/");
            await Expect(page.Locator("main a[href='/keel/queues']")).ToHaveTextAsync("All 2 queues");
        }
    }

    [Fact]
    public async Task One_queue_is_not_called_all_1_queues_and_an_empty_failed_list_offers_no_bulk_buttons()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        await app.Seed.ReadyAsync();
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/");
            await Expect(page.Locator("main a[href='/keel/queues']")).ToHaveTextAsync("The queue's page");
            await Expect(page.Locator("main")).Not.ToContainTextAsync("All 1 queues");

            await page.GotoAsync("/keel/jobs/failed");
            await Expect(page.Locator("p.empty")).ToBeVisibleAsync();
            await Expect(page.Locator("#bulk")).ToHaveCountAsync(0);
            await Expect(page.Locator("button:has-text('Retry')")).ToHaveCountAsync(0);

            await app.Seed.FailedAsync(1);
            await page.ReloadAsync();
            await Expect(page.Locator("#bulk button[value=retry-all]")).ToBeVisibleAsync();
        }
    }

    [Fact]
    public async Task Charts_share_a_baseline_however_their_titles_wrap_and_their_axis_labels_are_readable()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        await app.Seed.HistoryAsync(DateTimeOffset.UtcNow);
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            var wrappedDifferently = false;
            foreach (var width in new[] { 1366, 1280, 1200, 1100, 1000, 800 })
            {
                await page.SetViewportSizeAsync(width, 900);
                await page.GotoAsync("/keel/");
                await Expect(page.Locator("figure.chart")).ToHaveCountAsync(3);
                // [figure top, plot bottom, plot height, caption height] per chart
                var charts = await page.Locator("figure.chart").EvaluateAllAsync<double[][]>(
                    "fs => fs.map(f => { const p = f.querySelector('svg').getBoundingClientRect(); return [f.getBoundingClientRect().top, p.bottom, p.height, f.querySelector('figcaption').getBoundingClientRect().height]; })");
                foreach (var row in charts.GroupBy(c => Math.Round(c[0])).Where(r => r.Count() > 1))
                {
                    var first = row.First();
                    Assert.True(row.All(c => Math.Abs(c[1] - first[1]) < 0.5), $"at {width} px the plots of one row end at {string.Join(", ", row.Select(c => c[1]))} (title heights {string.Join(", ", row.Select(c => c[3]))})");
                    Assert.True(row.All(c => Math.Abs(c[2] - first[2]) < 0.5), $"at {width} px the plots of one row differ in height");
                    wrappedDifferently |= row.Select(c => Math.Round(c[3])).Distinct().Count() > 1;
                }
            }

            Assert.True(wrappedDifferently, "at one of these widths the titles of one row wrap to different heights: what the check is for");
            var labelSizes = await page.Locator("figure.chart div.axis span").EvaluateAllAsync<double[]>("spans => spans.map(s => parseFloat(getComputedStyle(s).fontSize))");
            Assert.Equal(6, labelSizes.Length); // "60 min ago" and "now" under each chart
            Assert.All(labelSizes, size => Assert.True(size >= 12, $"axis label at {size} px"));
            await Expect(page.Locator("#chart-throughput div.axis")).ToHaveTextAsync("60 min agonow");
        }
    }

    [Fact]
    public async Task Ten_megabytes_of_arguments_show_as_a_preview_with_a_download_of_all_of_them()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        // Stored directly: the client refuses arguments over Keel:MaxArgumentsBytes, but older jobs may hold more.
        var huge = "{\"csv\":\"" + new string('x', 10 * 1024 * 1024) + "\"}";
        var id = (await app.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("reports.build", "reports", huge, 0, 5, null)], null), default))[0];
        var small = await app.Seed.ReadyAsync("ada@example.com");
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            var response = await page.GotoAsync($"/keel/job/{id}");
            Assert.True((await response!.BodyAsync()).Length < 200_000, "the page carries a preview, not the 10 MB");
            await Expect(page.Locator("p.args-note")).ToContainTextAsync("Showing the first 64 KB as stored");
            await Expect(page.Locator("h2:has-text('Arguments') .count")).ToHaveTextAsync("10 MB");
            var preview = await page.Locator("#args").TextContentAsync();
            Assert.StartsWith("{\"csv\":\"xxxx", preview, StringComparison.Ordinal);
            Assert.Equal((64 * 1024) + 1, preview!.Length);

            var download = await page.APIRequest.GetAsync(await page.Locator("#args-download").GetAttributeAsync("href") ?? string.Empty);
            Assert.Equal(200, download.Status);
            Assert.StartsWith("application/json", download.Headers["content-type"], StringComparison.Ordinal);
            Assert.Contains("attachment", download.Headers["content-disposition"], StringComparison.Ordinal);
            Assert.Equal(huge, await download.TextAsync());

            await page.GotoAsync($"/keel/job/{small}");
            await Expect(page.Locator("#args")).ToContainTextAsync("ada@example.com");
            await Expect(page.Locator("p.args-note")).ToHaveCountAsync(0);
        }
    }

    [Fact]
    public async Task A_stale_claim_is_released_and_another_failed()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var lost = await app.Seed.ProcessAsync(heartbeatAge: TimeSpan.FromMinutes(10), hostname: "gone-host");
        var alive = await app.Seed.ProcessAsync();
        var stuck = (await app.Seed.ClaimedAsync(lost, "stuck"))[0];
        var running = (await app.Seed.ClaimedAsync(alive, "busy"))[0];
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/jobs/in-progress");
            await Expect(page.Locator($"tr[data-job='{stuck.JobId}'] .badge.stale")).ToBeVisibleAsync();
            await Expect(page.Locator($"tr[data-job='{running.JobId}'] .badge.alive")).ToBeVisibleAsync();

            await page.ClickAsync($"tr[data-job='{stuck.JobId}'] button:has-text('Release')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Released the job back to ready.");
            Assert.Equal(JobState.Ready, await StateAsync(app, stuck.JobId));
            Assert.Equal([running.ClaimId], (await app.Admin.ListClaimsAsync()).Select(c => c.ClaimId));

            await page.ClickAsync($"tr[data-job='{running.JobId}'] button:has-text('Fail')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Marked the job failed.");
            var failed = (await app.Client.GetJobAsync(running.JobId))!;
            Assert.Equal(JobState.Failed, failed.State);
            Assert.Contains("failed from the dashboard", failed.Errors[^1].Message, StringComparison.Ordinal);
            await Expect(page.Locator("p.empty")).ToHaveTextAsync("No job is in progress.");
        }
    }

    [Fact]
    public async Task A_running_job_shows_its_progress_and_is_cancelled_from_its_row_and_from_its_page()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var worker = await app.Seed.ProcessAsync();
        var claims = await app.Seed.ClaimedAsync(worker, "imports", count: 3);
        var (first, second, third) = (claims[0], claims[1], claims[2]);
        Assert.True(await app.Storage.JobProgressReportAsync(new JobProgressParams(worker, first.Ref, 0.42, "420 of 1000 rows", null), default));
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/jobs/in-progress");
            await Expect(page.Locator($"tr[data-job='{first.JobId}'] progress")).ToHaveAttributeAsync("value", "0.42");
            await Expect(page.Locator($"tr[data-job='{first.JobId}'] .progress")).ToContainTextAsync("42% 420 of 1000 rows");
            await Expect(page.Locator($"tr[data-job='{second.JobId}'] progress")).ToHaveCountAsync(0);

            await page.ClickAsync($"tr[data-job='{first.JobId}'] button:has-text('Cancel')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync($"Asked job {first.JobId} to stop; it is discarded once its run ends.");
            await Expect(page.Locator($"tr[data-job='{first.JobId}'] .badge.cancelling")).ToBeVisibleAsync();
            var request = Assert.Single(await app.Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
            Assert.Equal((first.ClaimId, "cancelled from the dashboard"), (request.ClaimId, request.Reason));

            await page.GotoAsync($"/keel/job/{first.JobId}");
            await Expect(page.Locator("dl.fields progress")).ToHaveAttributeAsync("value", "0.42");
            await Expect(page.Locator("dl.fields .badge.cancelling")).ToBeVisibleAsync();
            await Expect(page.Locator("form[action$='/actions/cancel'] button")).ToHaveCountAsync(0); // asked already

            await page.GotoAsync($"/keel/job/{second.JobId}");
            await page.ClickAsync("form[action$='/actions/cancel'] button:has-text('Cancel')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync($"Asked job {second.JobId} to stop; it is discarded once its run ends.");
            await Expect(page.Locator("dl.fields .badge.cancelling")).ToBeVisibleAsync();
            Assert.Equal(2, (await app.Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default)).Count);

            // Stopped to resume: the same request, marked so its job goes back to its queue instead of being discarded.
            await page.GotoAsync($"/keel/job/{third.JobId}");
            await page.ClickAsync("form[action$='/actions/cancel'] button:has-text('Stop & resume later')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync($"Asked job {third.JobId} to stop; it goes back to its queue with its checkpoint once its run ends.");
            var resume = Assert.Single(await app.Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default), r => r.JobId == third.JobId);
            Assert.Equal((true, "stopped from the dashboard, to resume"), (resume.Resume, resume.Reason));
        }
    }

    [Fact]
    public async Task Scheduled_and_blocked_jobs_run_now_and_a_recurring_task_runs_now()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var scheduled = await app.Seed.ScheduledAsync();
        var discardMe = await app.Seed.ScheduledAsync("monthly");
        var (_, blocked) = await app.Seed.BlockedAsync(3);
        await app.Seed.AddRecurringAsync("nightly-report");
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/jobs/scheduled");
            await page.ClickAsync($"tr[data-job='{scheduled}'] button:has-text('Run now')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync($"Job {scheduled} is ready to run now.");
            Assert.Equal(JobState.Ready, await StateAsync(app, scheduled));
            await page.ClickAsync($"tr[data-job='{discardMe}'] button:has-text('Discard')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync("Discarded 1 job.");
            Assert.Equal(JobState.Discarded, await StateAsync(app, discardMe));

            await page.GotoAsync("/keel/jobs/blocked");
            await Expect(page.Locator($"tr[data-job='{blocked}']")).ToContainTextAsync("accounts.sync/3");
            await page.ClickAsync($"tr[data-job='{blocked}'] button:has-text('Run now')");
            await Expect(page.Locator("p.notice")).ToHaveTextAsync($"Job {blocked} is ready to run now.");
            Assert.Equal(JobState.Ready, await StateAsync(app, blocked));

            await page.GotoAsync("/keel/recurring");
            await page.ClickAsync("tr[data-task=nightly-report] button:has-text('Run now')");
            await Expect(page.Locator("p.notice")).ToContainTextAsync("for recurring task nightly-report");
            var task = (await app.Recurring.ListAsync()).Single();
            var job = (await app.Client.GetJobAsync(task.LastJobId!.Value))!;
            Assert.Equal(("reports.build", JobState.Ready), (job.Kind, job.State));
            await Expect(page.Locator("tr[data-task=nightly-report]")).ToContainTextAsync($"job {job.Id}");
        }
    }

    [Fact]
    public async Task Job_lists_page_by_id_newest_first()
    {
        await using var app = await DashboardApp.StartAsync(Engine, o => o.PageSize = 5);
        var ids = new List<long>();
        for (var i = 0; i < 12; i++)
        {
            ids.Add(await app.Seed.ReadyAsync($"user{i}@example.com"));
        }

        ids.Reverse();
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/jobs/ready");
            var seen = new List<long>();
            for (var pageNumber = 0; pageNumber < 3; pageNumber++)
            {
                var rows = await page.Locator("tbody tr").EvaluateAllAsync<long[]>("rows => rows.map(r => Number(r.dataset.job))");
                seen.AddRange(rows);
                if (pageNumber < 2)
                {
                    await page.ClickAsync("a[rel=next]");
                }
            }

            Assert.Equal(ids, seen);
            await Expect(page.Locator("a[rel=next]")).ToHaveCountAsync(0);
        }
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_message_and_no_stack_trace()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            foreach (var (path, status, text) in new[]
            {
                ("/keel/job/abc", 400, "'abc' is not a job id"),
                ("/keel/job/-5", 400, "not a job id"),
                ("/keel/job/987654321", 404, "There is no job 987654321"),
                ("/keel/jobs/sleeping", 400, "unknown job state 'sleeping'"),
                ("/keel/jobs/failed?from=yesterday", 400, "'yesterday' in 'from' is not a date and time"),
                ("/keel/jobs/ready?before=x1", 400, "'x1' is not a job id"),
                ("/keel/jobs/ready?error=System.Exception", 400, "applies to failed jobs only"),
            })
            {
                var response = await page.GotoAsync(path);
                Assert.Equal(status, response!.Status);
                await Expect(page.Locator("p.error-message")).ToContainTextAsync(text);
                Assert.DoesNotContain("   at ", await page.ContentAsync(), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task Batches_show_their_progress_callbacks_and_jobs_and_a_job_shows_its_parents_and_children()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        var batch = await app.Client.StartBatchAsync(b =>
        {
            b.Description = "welcome the March sign-ups";
            for (var i = 0; i < 4; i++)
            {
                b.Add<SendWelcomeEmail, EmailArgs>(new($"user{i}@example.com", "secret"), new EnqueueOptions { Queue = "batch-mail" });
            }

            b.OnComplete<BuildReport, ReportArgs>(new("sign-ups"));
        });
        var worker = await app.Seed.ProcessAsync();
        var claim = Assert.Single(await app.Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.Parse("batch-mail"), 1, null), default));
        await app.Storage.JobsCompleteAsync(new JobsCompleteParams(worker, [claim.Ref], null, true), default);
        var child = await app.Client.After(claim.JobId).EnqueueAsync<BuildReport, ReportArgs>(new("after one"));
        var sibling = (await app.Storage.BatchJobsListAsync(new BatchJobsListParams(batch, null, 10), default)).First(j => j.State == JobState.Ready).Id;
        var waiting = await app.Client.After([claim.JobId, sibling]).EnqueueAsync<BuildReport, ReportArgs>(new("after both"));

        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            var consoleErrors = new List<string>();
            page.Console += (_, message) =>
            {
                if (message.Type == "error")
                {
                    consoleErrors.Add(message.Text);
                }
            };
            await page.GotoAsync("/keel/batches");
            var row = page.Locator($"tr[data-batch='{batch}']");
            await Expect(row).ToContainTextAsync("pending");
            await Expect(row).ToContainTextAsync("welcome the March sign-ups");
            await Expect(row.Locator("svg.progress")).ToHaveAttributeAsync("aria-valuenow", "25");
            await page.GotoAsync("/keel/batches?filter=completed");
            await Expect(page.Locator("p.empty")).ToContainTextAsync("No batch matches");

            await page.GotoAsync("/keel/batches");
            await page.Locator($"tr[data-batch='{batch}'] a").First.ClickAsync();
            await Expect(page.Locator("h1")).ToContainTextAsync($"Batch {batch}");
            await Expect(page.Locator(".batch-progress")).ToContainTextAsync("25% of 4 settled: 3 pending, 1 succeeded, 0 failed, 0 discarded");
            await Expect(page.Locator("tr[data-on=complete]")).ToContainTextAsync("not enqueued");
            await Expect(page.Locator(".batch-jobs tbody tr")).ToHaveCountAsync(4);
            await Expect(page.Locator($".batch-jobs tr[data-job='{claim.JobId}']")).ToContainTextAsync("finished");

            await page.GotoAsync($"/keel/job/{claim.JobId}");
            await Expect(page.Locator(".children tbody tr")).ToHaveCountAsync(2);
            await Expect(page.Locator($".children tr[data-job='{child}']")).ToContainTextAsync("Succeeded");
            await page.Locator($".children tr[data-job='{waiting}'] a").ClickAsync();
            await Expect(page.Locator("h1")).ToContainTextAsync("awaiting");
            await Expect(page.Locator($".parents tr[data-job='{sibling}']")).ToContainTextAsync("not yet");
            await Expect(page.Locator($".parents tr[data-job='{claim.JobId}']")).ToContainTextAsync("Succeeded");
            await page.GotoAsync($"/keel/job/{child}");
            await Expect(page.Locator(".parents tbody tr")).ToContainTextAsync("Succeeded");
            await page.GotoAsync($"/keel/job/{claim.JobId}");
            await Expect(page.Locator("dl.fields")).ToContainTextAsync($"batch {batch}");
            await page.GotoAsync("/keel/jobs/awaiting");
            await Expect(page.Locator($"tr[data-job='{waiting}']")).ToBeVisibleAsync();
            Assert.Empty(consoleErrors);
            Assert.Equal(404, (await page.GotoAsync("/keel/batch/987654"))!.Status);
        }
    }
}

[Collection(BrowserCollection.Name)]
public sealed class SqliteDashboardBrowserTests(BrowserFixture browser) : DashboardBrowserTests(browser)
{
    protected override Engine Engine => Engine.Sqlite;

    /// <summary>The screenshots in docs/images: a realistic hour of history, a supervisor tree, a stale worker.</summary>
    [Fact]
    public async Task Screenshots_of_the_overview_and_in_progress_pages()
    {
        await using var app = await DashboardApp.StartAsync(Engine);
        await app.Seed.HistoryAsync(DateTimeOffset.UtcNow);
        var supervisor = await app.Seed.ProcessAsync("Supervisor", hostname: "web-1", pid: 2001, metadata: "{\"workers\":2}");
        var worker1 = await app.Seed.ProcessAsync(supervisor: supervisor, hostname: "web-1", pid: 2002);
        var worker2 = await app.Seed.ProcessAsync(supervisor: supervisor, hostname: "web-1", pid: 2003);
        await app.Seed.ProcessAsync("Dispatcher", supervisor: supervisor, hostname: "web-1", pid: 2004, metadata: "{\"batch_size\":500}");
        await app.Seed.ProcessAsync("Scheduler", supervisor: supervisor, hostname: "web-1", pid: 2005, metadata: "{}");
        var frozen = await app.Seed.ProcessAsync(heartbeatAge: TimeSpan.FromSeconds(47), hostname: "web-2", pid: 1187);
        await app.Seed.ClaimedAsync(worker1, "mail", 3, "emails.welcome", DateTimeOffset.UtcNow.AddSeconds(-4));
        await app.Seed.ClaimedAsync(worker2, "reports", 2, "reports.build", DateTimeOffset.UtcNow.AddSeconds(-95));
        await app.Seed.ClaimedAsync(frozen, "default", 2, "invoices.send", DateTimeOffset.UtcNow.AddMinutes(-3));
        for (var i = 0; i < 40; i++)
        {
            await app.Seed.ReadyAsync($"user{i}@example.com");
        }

        await app.Seed.ScheduledAsync("weekly-sales");
        await app.Seed.BlockedAsync(42);
        await app.Seed.AddRecurringAsync("nightly-report");
        await app.Admin.PauseQueueAsync("reports");

        var (context, page) = await OpenAsync(app);
        await using (context)
        {
            await page.GotoAsync("/keel/");
            await Expect(page.Locator("#chart-throughput rect")).ToHaveCountAsync(60);
            var overview = await Screenshots.SaveAsync(page, "dashboard-overview.png");
            Assert.True(new FileInfo(overview).Length > 10_000);

            await page.GotoAsync("/keel/jobs/in-progress");
            await Expect(page.Locator(".badge.stale")).Not.ToHaveCountAsync(0);
            var inProgress = await Screenshots.SaveAsync(page, "dashboard-in-progress.png");
            Assert.True(new FileInfo(inProgress).Length > 10_000);
        }
    }
}

[Collection(BrowserCollection.Name)]
public sealed class PostgreSqlDashboardBrowserTests(BrowserFixture browser) : DashboardBrowserTests(browser)
{
    protected override Engine Engine => Engine.PostgreSql;
}

[Collection(BrowserCollection.Name)]
public sealed class MySqlDashboardBrowserTests(BrowserFixture browser) : DashboardBrowserTests(browser)
{
    protected override Engine Engine => Engine.MySql;
}
