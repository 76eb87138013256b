using System.Diagnostics;
using System.Text.Json;
using Keel.Cli;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.Tests.EndToEnd;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Cli;

/// <summary>Every keel command, in-process, against every engine: exit codes, JSON shapes, effects in the database.</summary>
public abstract class CliTests : IAsyncLifetime
{
    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private async Task<(int Code, string Out, string Err)> KeelAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await KeelCli.RunAsync(
            [.. args, "--database", Db.Setting],
            builder => builder.Services.AddKeel(k => k.UseSqlite().UsePostgreSql().UseMySql().AddJob<CountingJob>().AddJob<AlwaysFailsJob>()),
            output,
            error);
        return (code, output.ToString(), error.ToString());
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    private async Task<long> RegisterAsync(TimeSpan heartbeatAge)
        => await Db.Storage.ProcessRegisterAsync(new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..8], "Worker", 4242, "elsewhere", DateTimeOffset.UtcNow.AddHours(-1), null, "{}", DateTimeOffset.UtcNow - heartbeatAge), default);

    private async Task<IReadOnlyList<long>> InsertAsync(string queue, int count, string kind = "count")
        => await Db.Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(i => new NewJob(kind, queue, "{\"n\":" + i + "}", 0, 5, null))], null), default);

    [Fact]
    public async Task Migrate_and_check_report_the_schema_and_their_exit_codes()
    {
        await using var fresh = await TestDatabase.CreateAsync(Engine, migrate: false);
        using var output = new StringWriter();
        using var error = new StringWriter();
        Action<Microsoft.Extensions.Hosting.HostApplicationBuilder> app = b => b.Services.AddKeel(k => k.UseSqlite().UsePostgreSql().UseMySql());
        Assert.Equal(ExitCodes.SchemaMismatch, await KeelCli.RunAsync(["check", "--database", fresh.Setting], app, output, error));
        // A SQLite file that is not there is said to be missing, not to lack a schema.
        Assert.Contains(Engine == Engine.Sqlite ? "does not exist: check the path, or create it with `keel migrate`" : "no Keel schema", error.ToString(), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.SchemaMismatch, await KeelCli.RunAsync(["status", "--database", fresh.Setting], app, output, error));
        Assert.Equal(ExitCodes.Success, await KeelCli.RunAsync(["migrate", "--json", "--database", fresh.Setting], app, output, error));
        var migrated = Json(output.ToString());
        Assert.Equal((0, fresh.Storage.LatestSchemaVersion), (migrated.GetProperty("from").GetInt32(), migrated.GetProperty("to").GetInt32()));
        Assert.Equal(ExitCodes.Success, await KeelCli.RunAsync(["check", "--database", fresh.Setting], app, output, error));
    }

    [Fact]
    public async Task Status_lists_queues_and_processes_as_json()
    {
        await InsertAsync("mail", 3);
        var stale = await RegisterAsync(TimeSpan.FromMinutes(5));
        var (code, output, _) = await KeelAsync("status", "--json");
        Assert.Equal(0, code);
        var json = Json(output);
        var mail = json.GetProperty("queues").EnumerateArray().Single(q => q.GetProperty("name").GetString() == "mail");
        Assert.Equal(3, mail.GetProperty("ready").GetInt64());
        Assert.False(mail.GetProperty("paused").GetBoolean());
        var process = json.GetProperty("processes").EnumerateArray().Single();
        Assert.Equal((stale, true), (process.GetProperty("id").GetInt64(), process.GetProperty("stale").GetBoolean()));

        var (tableCode, table, _) = await KeelAsync("status");
        Assert.Equal(0, tableCode);
        Assert.Contains("mail", table, StringComparison.Ordinal);
        Assert.Contains("stale", table, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jobs_are_listed_shown_retried_and_discarded()
    {
        var ids = await InsertAsync("default", 3, kind: "always-fails");
        var process = await RegisterAsync(TimeSpan.Zero);
        foreach (var claim in await Db.Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, 2, null), default))
        {
            await Db.Storage.JobFailAsync(new JobFailParams(process, claim.Ref, new FailureRecord("System.TimeoutException", "too slow", "at Work()"), null, null), default);
        }

        var (code, output, _) = await KeelAsync("jobs", "list", "--state", "failed", "--json");
        Assert.Equal(0, code);
        var failed = Json(output).GetProperty("jobs").EnumerateArray().ToList();
        Assert.Equal(2, failed.Count);
        Assert.Equal("Failed", failed[0].GetProperty("state").GetString());
        Assert.Equal("System.TimeoutException", failed[0].GetProperty("errorType").GetString());

        (code, output, _) = await KeelAsync("jobs", "show", ids[0].ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, code);
        Assert.Contains("too slow", output, StringComparison.Ordinal);
        Assert.Contains("at Work()", output, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("jobs", "show", "987654")).Code);
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("jobs", "list", "--queue", "nope")).Code);

        (code, output, _) = await KeelAsync("jobs", "retry", "--all", "--error-type", "System.TimeoutException", "--yes", "--json");
        Assert.Equal(0, code);
        Assert.Equal(2, Json(output).GetProperty("count").GetInt64());
        Assert.Equal(JobState.Ready, (await Db.Storage.JobGetAsync(ids[0], default))!.State);
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("jobs", "retry", "--all", "--yes")).Code);
        Assert.Equal(ExitCodes.Usage, (await KeelAsync("jobs", "retry")).Code);

        (code, _, _) = await KeelAsync("jobs", "discard", ids[2].ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, code);
        Assert.Equal(JobState.Discarded, (await Db.Storage.JobGetAsync(ids[2], default))!.State);

        // Cancel: a job that has not started is discarded with the reason and who asked; a running one is asked to stop.
        var (waiting, running) = ((await InsertAsync("cancel", 1))[0], (await InsertAsync("cancel-running", 1))[0]);
        (code, output, _) = await KeelAsync("jobs", "cancel", waiting.ToString(System.Globalization.CultureInfo.InvariantCulture), "--reason", "not needed", "--json");
        Assert.Equal(0, code);
        Assert.Equal("Cancelled", Json(output).GetProperty("result").GetString());
        var cancelled = (await Db.Storage.JobGetAsync(waiting, default))!;
        Assert.Equal(JobState.Discarded, cancelled.State);
        Assert.StartsWith("not needed (keel jobs cancel by ", Assert.Single(cancelled.Runs, r => r.Outcome == RunOutcomes.Cancelled).Detail, StringComparison.Ordinal);
        var worker = await RegisterAsync(TimeSpan.Zero);
        Assert.Single(await Db.Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.Parse("cancel-running"), 1, null), default));
        (code, output, _) = await KeelAsync("jobs", "cancel", running.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, code);
        Assert.Contains("asked to stop", output, StringComparison.Ordinal);
        Assert.Single(await Db.Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("jobs", "cancel", waiting.ToString(System.Globalization.CultureInfo.InvariantCulture))).Code);
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("jobs", "cancel", "987654")).Code);

        // Cancel to resume: only a running job is stopped, and its worker is told the job goes back.
        var (idle, busy) = ((await InsertAsync("resume", 1))[0], (await InsertAsync("resume-running", 1))[0]);
        (code, output, _) = await KeelAsync("jobs", "cancel", idle.ToString(System.Globalization.CultureInfo.InvariantCulture), "--resume");
        Assert.Equal(ExitCodes.NotFound, code);
        Assert.Contains("is not running", output, StringComparison.Ordinal);
        Assert.Equal(JobState.Ready, (await Db.Storage.JobGetAsync(idle, default))!.State);
        Assert.Single(await Db.Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.Parse("resume-running"), 1, null), default));
        (code, output, _) = await KeelAsync("jobs", "cancel", busy.ToString(System.Globalization.CultureInfo.InvariantCulture), "--resume", "--json");
        Assert.Equal(0, code);
        Assert.Equal(("Requested", true), (Json(output).GetProperty("result").GetString(), Json(output).GetProperty("resume").GetBoolean()));
        Assert.Contains(await Db.Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default), r => r.JobId == busy && r.Resume);
        Assert.Equal(ExitCodes.Usage, (await KeelAsync("jobs", "list", "--state", "sleeping")).Code);
    }

    [Fact]
    public async Task Batches_are_listed_and_shown_and_jobs_show_their_parents_and_children()
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var started = await Db.Storage.BatchStartAsync(
            new BatchStartParams([new NewJob("count", "files", "{\"n\":1}", 0, 5, null), new NewJob("count", "files", "{\"n\":2}", 0, 5, null)], [new NewBatchCallback(BatchEvent.Complete, new NewJob("count", "zip", "{\"n\":0}", 0, 5, null))], null) { Description = "resize album 42" },
            default);
        var child = (await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("count", "zip", "{\"n\":3}", 0, 5, null) { Dependencies = [new NewDependency(started.JobIds[0], null, ContinueWhen.Finished, UnmetPolicy.Run)] }], null), default))[0];

        var (code, output, _) = await KeelAsync("batches", "list", "--json");
        Assert.Equal(0, code);
        var listed = Assert.Single(Json(output).GetProperty("batches").EnumerateArray());
        Assert.Equal((started.BatchId, "Pending", 2L), (listed.GetProperty("id").GetInt64(), listed.GetProperty("state").GetString(), listed.GetProperty("pending").GetInt64()));
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("batches", "list", "--completed")).Code);
        Assert.Equal(ExitCodes.Usage, (await KeelAsync("batches", "list", "--pending", "--completed")).Code);

        // A page at a time, as jobs list does: --limit rows, then --before the last id shown.
        var second = await Db.Storage.BatchStartAsync(new BatchStartParams([new NewJob("count", "files", "{\"n\":4}", 0, 5, null)], [], null), default);
        (code, output, _) = await KeelAsync("batches", "list", "--limit", "1");
        Assert.Equal(0, code);
        Assert.Contains($"1 batch; next page: --before {second.BatchId}", output, StringComparison.Ordinal);
        (code, output, _) = await KeelAsync("batches", "list", "--limit", "1", "--before", second.BatchId.ToString(inv), "--json");
        Assert.Equal(0, code);
        Assert.Equal(started.BatchId, Assert.Single(Json(output).GetProperty("batches").EnumerateArray()).GetProperty("id").GetInt64());
        Assert.Equal(JsonValueKind.Null, Json(output).GetProperty("next").ValueKind);
        (code, output, _) = await KeelAsync("batches", "list", "--limit", "1", "--before", second.BatchId.ToString(inv));
        Assert.Contains("1 batch; no more", output, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Usage, (await KeelAsync("batches", "list", "--limit", "0")).Code);

        (code, output, _) = await KeelAsync("batches", "show", started.BatchId.ToString(inv));
        Assert.Equal(0, code);
        Assert.Contains("resize album 42", output, StringComparison.Ordinal);
        Assert.Contains("0% of 2: 2 pending", output, StringComparison.Ordinal);
        Assert.Contains("not enqueued", output, StringComparison.Ordinal);
        (code, output, _) = await KeelAsync("batches", "show", started.BatchId.ToString(inv), "--json");
        Assert.Equal(0, code);
        Assert.Equal(2, Json(output).GetProperty("jobs").GetArrayLength());
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("batches", "show", "987654")).Code);

        (code, output, _) = await KeelAsync("jobs", "show", child.ToString(inv));
        Assert.Equal(0, code);
        Assert.Contains("awaiting", output, StringComparison.Ordinal);
        Assert.Contains("parents", output, StringComparison.Ordinal);
        Assert.Contains(started.JobIds[0].ToString(inv), output, StringComparison.Ordinal);
        Assert.Contains("run anyway", output, StringComparison.Ordinal);
        (code, output, _) = await KeelAsync("jobs", "show", started.JobIds[0].ToString(inv), "--json");
        Assert.Equal(0, code);
        var parent = Json(output);
        Assert.Equal(child, Assert.Single(parent.GetProperty("children").EnumerateArray()).GetProperty("childId").GetInt64());
        Assert.Equal(started.BatchId, parent.GetProperty("batchId").GetInt64());
        Assert.Equal(0, (await KeelAsync("jobs", "list", "--state", "awaiting")).Code);
    }

    [Fact]
    public async Task Claims_are_listed_with_staleness_then_released_or_failed()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        var alive = await RegisterAsync(TimeSpan.Zero);
        await InsertAsync("default", 3);
        await Db.Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, 2, null), default);
        var kept = (await Db.Storage.JobsClaimAsync(new JobsClaimParams(alive, QueueFilter.All, 1, null), default))[0];

        var (code, output, _) = await KeelAsync("claims", "list", "--json");
        Assert.Equal(0, code);
        var claims = Json(output).GetProperty("claims").EnumerateArray().ToList();
        Assert.Equal(3, claims.Count);
        Assert.Equal(2, claims.Count(c => c.GetProperty("stale").GetBoolean()));

        (code, output, _) = await KeelAsync("claims", "release", "--stale", "--yes", "--json");
        Assert.Equal(0, code);
        Assert.Equal(2, Json(output).GetProperty("released").GetInt32());
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("claims", "release", "--stale", "--yes")).Code);

        (code, _, _) = await KeelAsync("claims", "fail", kept.ClaimId.ToString(System.Globalization.CultureInfo.InvariantCulture), "--reason", "stuck");
        Assert.Equal(0, code);
        var job = (await Db.Storage.JobGetAsync(kept.JobId, default))!;
        Assert.Equal(JobState.Failed, job.State);
        Assert.Contains("stuck", job.Errors[^1].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Processes_are_listed_and_pruned()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        await InsertAsync("default", 1);
        await Db.Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, 1, null), default);
        var (code, output, _) = await KeelAsync("processes", "list", "--json");
        Assert.Equal(0, code);
        Assert.Equal(1, Json(output).GetProperty("processes").EnumerateArray().Single().GetProperty("claims").GetInt32());
        (code, output, _) = await KeelAsync("processes", "prune", dead.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");
        Assert.Equal(0, code);
        Assert.Equal(1, Json(output).GetProperty("retried").GetInt32());
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("processes", "prune", dead.ToString(System.Globalization.CultureInfo.InvariantCulture))).Code);
    }

    [Fact]
    public async Task Queues_are_paused_resumed_and_cleared()
    {
        await InsertAsync("it's;50%_off", 4);
        Assert.Equal(0, (await KeelAsync("queues", "pause", "it's;50%_off")).Code);
        Assert.True((await Db.Storage.QueuesListAsync(null, default)).Single().Paused);
        Assert.Equal(0, (await KeelAsync("queues", "resume", "it's;50%_off")).Code);
        Assert.False((await Db.Storage.QueuesListAsync(null, default)).Single().Paused);
        var (code, output, _) = await KeelAsync("queues", "clear", "it's;50%_off", "--yes", "--json");
        Assert.Equal(0, code);
        Assert.Equal(4, Json(output).GetProperty("discarded").GetInt64());
    }

    [Fact]
    public async Task Pausing_a_queue_nobody_uses_asks_for_force_instead_of_creating_it()
    {
        await InsertAsync("mail", 1);
        var (code, _, error) = await KeelAsync("queues", "pause", "mial");
        Assert.Equal(ExitCodes.NotFound, code);
        Assert.Contains("queue 'mial' is unknown", error, StringComparison.Ordinal);
        Assert.Contains("did you mean 'mail'?", error, StringComparison.Ordinal);
        Assert.Contains("--force", error, StringComparison.Ordinal);
        Assert.DoesNotContain(await Db.Storage.QueuesListAsync(null, default), q => q.Name == "mial");

        // A queue a job kind names is known before any of its jobs exists; any other can be paused in advance with --force.
        Assert.Equal(0, (await KeelAsync("queues", "pause", "default")).Code);
        Assert.Equal(0, (await KeelAsync("queues", "pause", "reports", "--force")).Code);
        var (listCode, list, _) = await KeelAsync("queues", "list", "--json");
        Assert.Equal(0, listCode);
        var queues = Json(list).GetProperty("queues").EnumerateArray().ToDictionary(q => q.GetProperty("name").GetString()!, q => q.GetProperty("paused").GetBoolean());
        Assert.Equal(new Dictionary<string, bool> { ["default"] = true, ["mail"] = false, ["reports"] = true }, queues);
    }

    [Fact]
    public async Task Jobs_list_offers_a_next_page_only_when_there_is_one_and_refuses_a_bad_limit()
    {
        var ids = await InsertAsync("mail", 3);
        var (code, output, _) = await KeelAsync("jobs", "list");
        Assert.Equal(0, code);
        Assert.Contains("3 jobs; no more", output, StringComparison.Ordinal);
        Assert.DoesNotContain("next page", output, StringComparison.Ordinal);

        (code, output, _) = await KeelAsync("jobs", "list", "--limit", "2", "--json");
        Assert.Equal(0, code);
        Assert.Equal(ids[1], Json(output).GetProperty("next").GetInt64());
        (code, output, _) = await KeelAsync("jobs", "list", "--limit", "2");
        Assert.Contains($"2 jobs; next page: --before {ids[1]}", output, StringComparison.Ordinal);
        (code, output, _) = await KeelAsync("jobs", "list", "--limit", "2", "--before", ids[1].ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");
        Assert.Equal(0, code);
        var last = Json(output);
        Assert.Equal([ids[0]], last.GetProperty("jobs").EnumerateArray().Select(j => j.GetProperty("id").GetInt64()));
        Assert.Equal(JsonValueKind.Null, last.GetProperty("next").ValueKind);

        foreach (var bad in new[] { "0", "-3", "10001" })
        {
            var (badCode, _, error) = await KeelAsync("jobs", "list", "--limit", bad);
            Assert.Equal(ExitCodes.Usage, badCode);
            Assert.Contains("--limit must be between 1 and 10000", error, StringComparison.Ordinal);
        }

        // Nothing matches: exit 6 whatever the format; JSON still gets its (empty) document.
        (code, output, _) = await KeelAsync("jobs", "list", "--queue", "nosuch", "--json");
        Assert.Equal(ExitCodes.NotFound, code);
        Assert.Equal(0, Json(output).GetProperty("jobs").GetArrayLength());
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("jobs", "list", "--queue", "nosuch")).Code);
    }

    [Fact]
    public async Task Jobs_show_prints_the_due_time_and_gives_the_timeline_and_cause_codes_as_json()
    {
        var due = DateTimeOffset.UtcNow.AddHours(2);
        var scheduled = (await Db.Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("count", "mail", "{\"n\":1}", 0, 5, due)], null), default))[0];
        var (code, output, _) = await KeelAsync("jobs", "show", scheduled.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(0, code);
        Assert.Contains($"{due.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z  due (waiting until then)", output, StringComparison.Ordinal);

        // A claim failed by an operator: the error carries the cause code, the timeline says what happened.
        var process = await RegisterAsync(TimeSpan.Zero);
        var lost = (await InsertAsync("default", 1))[0];
        var claim = Assert.Single(await Db.Storage.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.Parse("default"), 1, null), default));
        Assert.Equal(0, (await KeelAsync("claims", "fail", claim.ClaimId.ToString(System.Globalization.CultureInfo.InvariantCulture), "--reason", "stuck")).Code);
        (code, output, _) = await KeelAsync("jobs", "show", lost.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");
        Assert.Equal(0, code);
        var job = Json(output);
        var error = Assert.Single(job.GetProperty("errors").EnumerateArray());
        Assert.Equal("operator", error.GetProperty("cause").GetString());
        Assert.Equal(["enqueued", "failed"], job.GetProperty("timeline").EnumerateArray().Select(e => e.GetProperty("event").GetString()));
        Assert.Contains("attempt 1 failed: Keel.WorkerLostException (operator)", job.GetProperty("timeline")[1].GetProperty("description").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Jobs_show_lists_every_run_with_its_process_cause_and_charge()
    {
        var dead = await RegisterAsync(TimeSpan.Zero);
        var ids = await InsertAsync("default", 2);
        Assert.Equal(2, (await Db.Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.Parse("default"), 2, null), default)).Count);
        await Db.Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("process-exited", "killed by signal 9 (SIGKILL)"), null), default);
        var id = ids[0].ToString(System.Globalization.CultureInfo.InvariantCulture);

        var (code, output, _) = await KeelAsync("jobs", "show", id);
        Assert.Equal(0, code);
        Assert.Contains("process-exited", output, StringComparison.Ordinal);
        Assert.Contains("4242", output, StringComparison.Ordinal);
        Assert.Contains("uncharged shared deaths: 1", output, StringComparison.Ordinal);
        Assert.Contains("attempt 1 lost", output, StringComparison.Ordinal);

        (code, output, _) = await KeelAsync("jobs", "show", id, "--json");
        Assert.Equal(0, code);
        Assert.Equal((1, false), (Json(output).GetProperty("sharedLosses").GetInt32(), Json(output).GetProperty("suspect").GetBoolean()));
        var run = Assert.Single(Json(output).GetProperty("runs").EnumerateArray());
        Assert.Equal(("lost", "process-exited", false), (run.GetProperty("outcome").GetString(), run.GetProperty("cause").GetString(), run.GetProperty("charged").GetBoolean()));
        Assert.Equal(4242, run.GetProperty("runner").GetProperty("pid").GetInt32());
        Assert.Equal([ids[1]], run.GetProperty("sharedWith").EnumerateArray().Select(e => e.GetInt64()));
    }

    [Fact]
    public async Task An_unknown_command_is_named_without_a_required_command_error_first()
    {
        var (code, _, error) = await KeelAsync("nosuch");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.StartsWith("keel: Unrecognized command or argument 'nosuch'", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Required command", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Recurring_tasks_are_listed_and_run_now()
    {
        await Db.Storage.RecurringTaskUpsertAsync(new RecurringTaskUpsertParams(new RecurringTask("nightly", "count", "{\"n\":1}", "0 2 * * *", null, null, null, null, RecurringCatchUp.Skip, 1, false, null), null), default);
        var (code, output, _) = await KeelAsync("recurring", "list", "--json");
        Assert.Equal(0, code);
        Assert.Contains("nightly", output, StringComparison.Ordinal);
        (code, output, _) = await KeelAsync("recurring", "run", "nightly", "--json");
        Assert.Equal(0, code);
        var jobId = Json(output).GetProperty("jobId").GetInt64();
        Assert.Equal(JobState.Ready, (await Db.Storage.JobGetAsync(jobId, default))!.State);
        Assert.Equal(ExitCodes.NotFound, (await KeelAsync("recurring", "run", "missing")).Code);
    }

    [Fact]
    public async Task Bad_input_gives_one_line_on_stderr_and_a_documented_exit_code()
    {
        Assert.Equal(ExitCodes.Usage, (await KeelAsync("jobs", "frobnicate")).Code);
        using var output = new StringWriter();
        using var error = new StringWriter();
        Action<Microsoft.Extensions.Hosting.HostApplicationBuilder> app = b => b.Services.AddKeel(k => k.UseSqlite().UsePostgreSql().UseMySql());
        Assert.Equal(ExitCodes.InvalidConfiguration, await KeelCli.RunAsync(["status", "--database", "Host=127.0.0.1;Port=notaport"], app, output, error));
        Assert.Equal(ExitCodes.DatabaseUnreachable, await KeelCli.RunAsync(["status", "--database", "Host=127.0.0.1;Port=1;Timeout=2"], app, output, error));
        // A SQLite file that does not exist is said to be missing (migrate creates it).
        Assert.Equal(ExitCodes.SchemaMismatch, await KeelCli.RunAsync(["status", "--database", "/nonexistent-dir/x/keel.db"], app, output, error));
        Assert.DoesNotContain("   at ", error.ToString(), StringComparison.Ordinal);
        Assert.All(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.StartsWith("keel: ", line, StringComparison.Ordinal));
    }
}

public sealed class SqliteCliTests : CliTests
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlCliTests : CliTests
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlCliTests : CliTests
{
    protected override Engine Engine => Engine.MySql;
}
