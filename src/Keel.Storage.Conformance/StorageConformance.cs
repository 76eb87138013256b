using System.Collections.Concurrent;
using Keel.Storage;

namespace Keel.Storage.Conformance;

/// <summary>
/// The storage contract, written once and run against every engine. Each test gets a fresh database.
/// </summary>
public abstract class StorageConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);


    private static NewJob Job(string queue = "default", int priority = 0, DateTimeOffset? at = null, string kind = "test", string args = "{}", int maxAttempts = 3)
        => new(kind, queue, args, priority, maxAttempts, at);

    private async Task<long> RegisterAsync(string? name = null)
        => await Storage.ProcessRegisterAsync(new ProcessRegisterParams(name ?? "worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 1234, "test-host", T0, null, "{}", T0), default);

    private async Task<IReadOnlyList<long>> InsertAsync(params NewJob[] jobs) => await Storage.JobsInsertAsync(new JobsInsertParams(jobs, T0), default);

    private async Task<IReadOnlyList<ClaimedJob>> ClaimAsync(long processId, int limit, QueueFilter? queue = null)
        => await Storage.JobsClaimAsync(new JobsClaimParams(processId, queue ?? QueueFilter.All, limit, T0), default);

    private static async Task DisposeAllAsync(IEnumerable<IKeelStorage> stores)
    {
        foreach (var store in stores)
        {
            if (store is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Migrating_twice_is_harmless_and_reports_the_latest_version()
    {
        await Storage.MigrateAsync(default);
        await Storage.MigrateAsync(default);
        Assert.Equal(Storage.LatestSchemaVersion, await Storage.SchemaVersionAsync(default));
        Assert.True(Storage.LatestSchemaVersion >= 1);
    }

    [Fact]
    public async Task Concurrent_migrations_from_several_callers_succeed()
    {
        await using var fresh = await CreateDatabaseAsync(migrate: false);
        Assert.Equal(0, await fresh.Storage.SchemaVersionAsync(default));
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => fresh.Storage.MigrateAsync(default))));
        Assert.Equal(fresh.Storage.LatestSchemaVersion, await fresh.Storage.SchemaVersionAsync(default));
        Assert.Equal(fresh.Storage.LatestSchemaVersion, await fresh.ScalarAsync("SELECT count(*) FROM keel_schema_migrations"));
    }

    [Fact]
    public async Task Separate_stores_migrating_one_fresh_database_at_once_all_succeed()
    {
        // Several hosts starting together, each with its own store: the migrations are applied once.
        await using var fresh = await CreateDatabaseAsync(migrate: false);
        var others = new[] { fresh.NewStorage(), fresh.NewStorage() };
        try
        {
            await Task.WhenAll(others.Append(fresh.Storage).Select(store => Task.Run(() => store.MigrateAsync(default))));
            Assert.Equal(fresh.Storage.LatestSchemaVersion, await fresh.Storage.SchemaVersionAsync(default));
            Assert.Equal(fresh.Storage.LatestSchemaVersion, await fresh.ScalarAsync("SELECT count(*) FROM keel_schema_migrations"));
        }
        finally
        {
            await DisposeAllAsync(others);
        }
    }

    [Fact]
    public async Task A_database_newer_than_the_code_is_refused_with_a_clear_error()
    {
        await Db.ExecuteAsync($"INSERT INTO keel_schema_migrations (version, name, applied_at) VALUES (999, 'future', {Db.TimeLiteral(T0)})");
        var error = await Assert.ThrowsAsync<KeelSchemaException>(() => Storage.MigrateAsync(default));
        Assert.Contains("999", error.Message, StringComparison.Ordinal);
        Assert.Contains("newer", error.Message, StringComparison.Ordinal);
        Assert.Equal(999, await Storage.SchemaVersionAsync(default));
    }

    [Fact]
    public async Task Insert_returns_ids_in_input_order_and_puts_due_jobs_in_ready_and_future_ones_in_scheduled()
    {
        var ids = await InsertAsync(Job(args: "{\"n\":1}"), Job(at: T0.AddMinutes(5), args: "{\"n\":2}"), Job(at: T0.AddMinutes(-5), args: "{\"n\":3}"));
        Assert.Equal(3, ids.Count);
        Assert.True(ids[0] < ids[1] && ids[1] < ids[2]);
        var first = await Storage.JobGetAsync(ids[0], default);
        var second = await Storage.JobGetAsync(ids[1], default);
        var third = await Storage.JobGetAsync(ids[2], default);
        Assert.Equal((JobState.Ready, "{\"n\":1}"), (first!.State, first.Args));
        Assert.Equal(JobState.Scheduled, second!.State);
        Assert.Equal(T0.AddMinutes(5), second.ScheduledAt);
        Assert.Equal(JobState.Ready, third!.State);
        Assert.Equal(0, first.Attempts);
        Assert.Equal(T0, first.CreatedAt);
        Assert.Null(await Storage.JobGetAsync(ids[2] + 1000, default));
    }

    [Fact]
    public async Task Bulk_insert_of_many_jobs_is_one_call()
    {
        var jobs = Enumerable.Range(0, 2000).Select(i => Job(args: $"{{\"i\":{i}}}")).ToArray();
        var ids = await InsertAsync(jobs);
        Assert.Equal(2000, ids.Distinct().Count());
        Assert.Equal(2000, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        var last = await Storage.JobGetAsync(ids[^1], default);
        Assert.Equal("{\"i\":1999}", last!.Args);
    }

    [Fact]
    public async Task Claim_takes_priority_then_id_order_up_to_the_limit_and_removes_ready_rows()
    {
        var ids = await InsertAsync(Job(priority: 5), Job(priority: 1), Job(priority: 1), Job(priority: 0));
        var process = await RegisterAsync();
        var claimed = await ClaimAsync(process, 3);
        Assert.Equal(new[] { ids[3], ids[1], ids[2] }, claimed.Select(c => c.JobId));
        Assert.All(claimed, c => Assert.Equal(1, c.Attempt));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(3, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        var job = await Storage.JobGetAsync(ids[3], default);
        Assert.Equal(JobState.Claimed, job!.State);
        Assert.Equal(process, job.ClaimedByProcessId);
        Assert.Empty(await ClaimAsync(process, 0));
    }

    [Fact]
    public async Task Queue_names_with_quotes_percent_underscore_and_semicolons_match_literally()
    {
        const string tricky = "it's;50%_off";
        var ids = await InsertAsync(Job(queue: tricky), Job(queue: "its;50x_off"), Job(queue: "it's;50%_offer"), Job(queue: "abc"));
        var process = await RegisterAsync();
        var exact = await ClaimAsync(process, 10, QueueFilter.Parse(tricky));
        Assert.Equal(new[] { ids[0] }, exact.Select(c => c.JobId));
        Assert.Equal(tricky, exact[0].Queue);

        var prefix = await ClaimAsync(process, 10, QueueFilter.Parse("it's;50%*"));
        Assert.Equal(new[] { ids[2] }, prefix.Select(c => c.JobId));
        Assert.Empty(await ClaimAsync(process, 10, QueueFilter.Parse("a%*")));
        Assert.Empty(await ClaimAsync(process, 10, QueueFilter.Parse("_bc")));
        Assert.Equal(new[] { ids[3] }, (await ClaimAsync(process, 10, QueueFilter.Parse("ab*"))).Select(c => c.JobId));
    }

    [Fact]
    public async Task Paused_queues_are_skipped_by_every_kind_of_claim()
    {
        var ids = await InsertAsync(Job(queue: "paused"), Job(queue: "open"));
        await Db.ExecuteAsync($"INSERT INTO keel_pauses (queue, created_at) VALUES ('paused', {Db.TimeLiteral(T0)})");
        var process = await RegisterAsync();
        Assert.Empty(await ClaimAsync(process, 10, QueueFilter.Parse("paused")));
        Assert.Empty(await ClaimAsync(process, 10, QueueFilter.Parse("pau*")));
        Assert.Equal(new[] { ids[1] }, (await ClaimAsync(process, 10)).Select(c => c.JobId));
        await Db.ExecuteAsync("DELETE FROM keel_pauses");
        Assert.Equal(new[] { ids[0] }, (await ClaimAsync(process, 10)).Select(c => c.JobId));
    }

    [Fact]
    public async Task Concurrent_claimers_never_claim_the_same_job()
    {
        await InsertAsync(Enumerable.Range(0, 600).Select(_ => Job()).ToArray());
        var processes = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => RegisterAsync()));
        var seen = new ConcurrentBag<long>();
        await Task.WhenAll(processes.Select(process => Task.Run(async () =>
        {
            while (true)
            {
                var claimed = await ClaimAsync(process, 7);
                if (claimed.Count == 0)
                {
                    return;
                }

                foreach (var c in claimed)
                {
                    seen.Add(c.JobId);
                }
            }
        })));
        Assert.Equal(600, seen.Count);
        Assert.Equal(600, seen.Distinct().Count());
        Assert.Equal(600, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task Complete_finishes_held_claims_and_rejects_late_or_foreign_ones()
    {
        var ids = await InsertAsync(Job(), Job());
        var owner = await RegisterAsync();
        var other = await RegisterAsync();
        var claimed = await ClaimAsync(owner, 2);

        var foreign = await Storage.JobsCompleteAsync(new JobsCompleteParams(other, [claimed[0].Ref], T0, true), default);
        Assert.Empty(foreign);

        var accepted = await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [.. claimed.Select(c => c.Ref)], T0.AddSeconds(1), true), default);
        Assert.Equal(claimed.Select(c => c.ClaimId).Order(), accepted.Order());
        var job = await Storage.JobGetAsync(ids[0], default);
        Assert.Equal(JobState.Finished, job!.State);
        Assert.Equal(T0.AddSeconds(1), job.FinishedAt);
        Assert.Equal(1, job.Attempts);

        var late = await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [claimed[0].Ref], T0, true), default);
        Assert.Empty(late);
        Assert.False(await Storage.JobFailAsync(new JobFailParams(owner, claimed[1].Ref, new FailureRecord("X", "late", null), null, T0), default));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_errors"));
    }

    [Fact]
    public async Task Claimers_on_separate_stores_never_claim_the_same_job()
    {
        // As Concurrent_claimers_never_claim_the_same_job, but each process has its own store, as separate hosts do:
        // no lock inside one store instance can serialise the claims.
        await InsertAsync(Enumerable.Range(0, 300).Select(_ => Job()).ToArray());
        var stores = Enumerable.Range(0, 3).Select(_ => Db.NewStorage()).ToArray();
        try
        {
            var seen = new ConcurrentBag<long>();
            await Task.WhenAll(stores.Select(store => Task.Run(async () =>
            {
                var process = await store.ProcessRegisterAsync(new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 1234, "test-host", T0, null, "{}", T0), default);
                while (true)
                {
                    var claimed = await store.JobsClaimAsync(new JobsClaimParams(process, QueueFilter.All, 5, T0), default);
                    if (claimed.Count == 0)
                    {
                        return;
                    }

                    foreach (var c in claimed)
                    {
                        seen.Add(c.JobId);
                    }
                }
            })));
            Assert.Equal(300, seen.Count);
            Assert.Equal(300, seen.Distinct().Count());
            Assert.Equal(300, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        }
        finally
        {
            await DisposeAllAsync(stores);
        }
    }

    [Fact]
    public async Task A_stale_claim_of_the_same_process_is_rejected_once_the_job_is_claimed_again()
    {
        // The fence is the claim, not only the process: a result for an earlier run of the job, from the very
        // process that holds it now, is rejected.
        var ids = await InsertAsync(Job());
        var owner = await RegisterAsync();
        var first = Assert.Single(await ClaimAsync(owner, 1));
        Assert.True(await Storage.JobFailAsync(new JobFailParams(owner, first.Ref, new FailureRecord("E", "retry", null), T0, T0), default));
        var second = Assert.Single(await ClaimAsync(owner, 1));
        Assert.Equal((first.JobId, 2), (second.JobId, second.Attempt));
        Assert.True(second.ClaimId > first.ClaimId, "a later claim of the same job carries a larger fencing token");

        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [first.Ref], T0, true), default));
        Assert.False(await Storage.JobFailAsync(new JobFailParams(owner, first.Ref, new FailureRecord("E", "late", null), null, T0), default));
        Assert.Equal(0, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(owner, [first.ClaimId], T0), default));
        Assert.False(await Storage.ClaimHeldAsync(new ClaimHeldParams(owner, first.Ref, T0), default));
        Assert.True(await Storage.ClaimHeldAsync(new ClaimHeldParams(owner, second.Ref, T0), default));
        Assert.Equal(JobState.Claimed, (await Storage.JobGetAsync(ids[0], default))!.State);

        Assert.Single(await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [second.Ref], T0, true), default));
        var job = (await Storage.JobGetAsync(ids[0], default))!;
        Assert.Equal((JobState.Finished, 2), (job.State, job.Attempts));
        Assert.Equal("retry", Assert.Single(job.Errors).Message);
    }

    [Fact]
    public async Task An_outcome_naming_a_held_claim_with_another_job_is_rejected_and_changes_nothing()
    {
        // The fence is (claim, job, process): every outcome names all three, so a result whose claim id were ever
        // handed out again (a restored backup, an engine that reissues ids) could not finish another job.
        var ids = await InsertAsync(Job(), Job());
        var owner = await RegisterAsync();
        var claimed = await ClaimAsync(owner, 2);
        var crossed = claimed.Select((c, i) => c.Ref with { JobId = claimed[1 - i].JobId }).ToList();

        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, crossed, T0, true), default));
        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, crossed, T0, false), default));
        Assert.False(await Storage.JobFailAsync(new JobFailParams(owner, crossed[0], new FailureRecord("X", "crossed", null), null, T0), default));
        Assert.False(await Storage.JobFailAsync(new JobFailParams(owner, crossed[1], new FailureRecord("X", "crossed", null), T0, T0), default));
        Assert.False(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(owner, crossed[0], new RunEnding(RunOutcomes.Cancelled, RunCauses.CancelHonoured, "crossed"), T0), default));

        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_errors"));
        foreach (var id in ids)
        {
            var job = (await Storage.JobGetAsync(id, default))!;
            Assert.Equal((JobState.Claimed, (long?)owner, 0), (job.State, job.ClaimedByProcessId, job.Attempts));
        }

        Assert.Equal(claimed.Select(c => c.ClaimId).Order(), (await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [.. claimed.Select(c => c.Ref)], T0, true), default)).Order());
        foreach (var id in ids)
        {
            Assert.Equal(JobState.Finished, (await Storage.JobGetAsync(id, default))!.State);
        }
    }

    [Fact]
    public async Task Another_process_can_neither_release_nor_mark_a_claim_it_does_not_hold()
    {
        var ids = await InsertAsync(Job(), Job());
        var owner = await RegisterAsync();
        var other = await RegisterAsync();
        var claimed = await ClaimAsync(owner, 2);

        Assert.Equal(0, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(other, [claimed[0].ClaimId], T0), default));
        Assert.Equal(0, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(other, null, T0), default));
        Assert.Equal(0, await Storage.ClaimsMarkUnresponsiveAsync(new ClaimsMarkUnresponsiveParams(other, [claimed[0].ClaimId], T0), default));
        Assert.False(await Storage.ClaimHeldAsync(new ClaimHeldParams(other, claimed[0].Ref, T0), default));

        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions WHERE unresponsive_at IS NOT NULL"));
        foreach (var id in ids)
        {
            var job = (await Storage.JobGetAsync(id, default))!;
            Assert.Equal((JobState.Claimed, (long?)owner), (job.State, job.ClaimedByProcessId));
        }
    }

    [Fact]
    public async Task Ids_are_never_reused_even_once_every_row_that_held_them_is_deleted()
    {
        // Job, claim and process ids are fencing tokens: an id handed out again would let a late result through.
        var owner = await RegisterAsync();
        var firstJob = (await InsertAsync(Job()))[0];
        var firstClaim = Assert.Single(await ClaimAsync(owner, 1));
        Assert.Single(await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [firstClaim.Ref], T0, false), default));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));

        var secondJob = (await InsertAsync(Job()))[0];
        Assert.True(secondJob > firstJob, $"job id {secondJob} after {firstJob}");
        var secondClaim = Assert.Single(await ClaimAsync(owner, 1));
        Assert.True(secondClaim.ClaimId > firstClaim.ClaimId, $"claim id {secondClaim.ClaimId} after {firstClaim.ClaimId}");

        Assert.Equal(1, await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(owner, T0), default));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        var next = await RegisterAsync();
        Assert.True(next > owner, $"process id {next} after {owner}");
        var thirdClaim = Assert.Single(await ClaimAsync(next, 1));
        Assert.True(thirdClaim.ClaimId > secondClaim.ClaimId, $"claim id {thirdClaim.ClaimId} after {secondClaim.ClaimId}");
    }

    [Fact]
    public async Task Complete_and_claim_writes_held_completions_and_claims_into_the_freed_slots()
    {
        var ids = await InsertAsync(Job(priority: 0), Job(priority: 0), Job(priority: 1), Job(priority: 2), Job(priority: 3), Job(priority: 4));
        var owner = await RegisterAsync();
        var other = await RegisterAsync();
        var mine = await ClaimAsync(owner, 2);
        var theirs = Assert.Single(await ClaimAsync(other, 1));

        var result = await Storage.JobsCompleteAndClaimAsync(
            new JobsCompleteParams(owner, [.. mine.Select(c => c.Ref), theirs.Ref], T0.AddSeconds(1), true),
            new JobsClaimParams(owner, QueueFilter.All, 2, T0.AddSeconds(1)),
            default);

        Assert.Equal(mine.Select(c => c.ClaimId).Order(), result.Completed.Order());
        Assert.Equal([ids[3], ids[4]], result.Claimed.Select(c => c.JobId)); // Next by priority, after the foreign claim's job.
        Assert.All(mine, c => Assert.Equal(JobState.Finished, Storage.JobGetAsync(c.JobId, default).Result!.State));
        Assert.Equal(JobState.Claimed, (await Storage.JobGetAsync(theirs.JobId, default))!.State);
        Assert.Equal(owner, (await Storage.JobGetAsync(ids[3], default))!.ClaimedByProcessId);
        Assert.Equal(3, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task Complete_and_claim_by_a_pruned_process_finishes_nothing_and_claims_nothing()
    {
        await InsertAsync(Job(), Job());
        var owner = await RegisterAsync();
        var claim = Assert.Single(await ClaimAsync(owner, 1));
        await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(owner, new WorkerLostCause("process-exited", "killed"), T0), default);

        await Assert.ThrowsAsync<ProcessGoneException>(() => Storage.JobsCompleteAndClaimAsync(
            new JobsCompleteParams(owner, [claim.Ref], T0, true),
            new JobsClaimParams(owner, QueueFilter.All, 2, T0),
            default));

        Assert.NotEqual(JobState.Finished, (await Storage.JobGetAsync(claim.JobId, default))!.State);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task Hot_tables_full_of_dead_rows_are_cleaned_and_clean_ones_left_alone()
    {
        var owner = await RegisterAsync();
        Assert.Empty(await Storage.HotTablesVacuumAsync(10_000, default));
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, 12_000).Select(_ => Job())], T0), default);
        Assert.Equal(12_000, (await ClaimAsync(owner, 12_000)).Count); // 12,000 ready rows deleted.
        if (await Db.DeadRowsAsync("keel_ready_executions") is null)
        {
            // No dead rows to clean (SQLite; on MariaDB/MySQL, InnoDB's purge thread removes them by itself).
            Assert.Empty(await Storage.HotTablesVacuumAsync(10_000, default));
            return;
        }

        await Eventually.WaitUntilAsync(async () => await Db.DeadRowsAsync("keel_ready_executions") >= 10_000, TimeSpan.FromSeconds(15), "the statistics count the dead ready rows");

        Assert.Equal(["keel_ready_executions"], await Storage.HotTablesVacuumAsync(10_000, default));
        await Eventually.WaitUntilAsync(async () => await Db.DeadRowsAsync("keel_ready_executions") < 10_000, TimeSpan.FromSeconds(15), "the vacuum removed the dead ready rows");
        Assert.Equal(12_000, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task Complete_deletes_jobs_when_finished_jobs_are_not_preserved()
    {
        await InsertAsync(Job(), Job());
        var owner = await RegisterAsync();
        var claimed = await ClaimAsync(owner, 2);
        await Storage.JobsCompleteAsync(new JobsCompleteParams(owner, [.. claimed.Select(c => c.Ref)], T0, false), default);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task Fail_with_a_retry_time_schedules_the_job_and_records_the_error()
    {
        var ids = await InsertAsync(Job());
        var owner = await RegisterAsync();
        var claim = (await ClaimAsync(owner, 1))[0];
        var failure = new FailureRecord("System.InvalidOperationException", "boom", "at Somewhere()");
        Assert.True(await Storage.JobFailAsync(new JobFailParams(owner, claim.Ref, failure, T0.AddSeconds(30), T0), default));

        var job = await Storage.JobGetAsync(ids[0], default);
        Assert.Equal(JobState.Scheduled, job!.State);
        Assert.Equal(T0.AddSeconds(30), job.ScheduledAt);
        Assert.Equal(1, job.Attempts);
        var error = Assert.Single(job.Errors);
        Assert.Equal((1, "System.InvalidOperationException", "boom", "at Somewhere()"), (error.Attempt, error.ExceptionType, error.Message, error.StackTrace));

        Assert.Equal(0, await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(10, T0.AddSeconds(29)), default));
        Assert.Equal(1, await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(10, T0.AddSeconds(30)), default));
        var again = (await ClaimAsync(owner, 1))[0];
        Assert.Equal(2, again.Attempt);
    }

    [Fact]
    public async Task Fail_with_a_past_retry_time_makes_the_job_ready_at_once()
    {
        var ids = await InsertAsync(Job());
        var owner = await RegisterAsync();
        var claim = (await ClaimAsync(owner, 1))[0];
        Assert.True(await Storage.JobFailAsync(new JobFailParams(owner, claim.Ref, new FailureRecord("E", "m", null), T0, T0), default));
        Assert.Equal(JobState.Ready, (await Storage.JobGetAsync(ids[0], default))!.State);
    }

    [Fact]
    public async Task Fail_without_a_retry_time_moves_the_job_to_failed()
    {
        var ids = await InsertAsync(Job());
        var owner = await RegisterAsync();
        var claim = (await ClaimAsync(owner, 1))[0];
        Assert.True(await Storage.JobFailAsync(new JobFailParams(owner, claim.Ref, new FailureRecord("Keel.JobTimeoutException", "too slow", "trace"), null, T0), default));
        var job = await Storage.JobGetAsync(ids[0], default);
        Assert.Equal(JobState.Failed, job!.State);
        Assert.Equal(1, job.Attempts);
        Assert.Equal("too slow", Assert.Single(job.Errors).Message);
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions WHERE exception_type = 'Keel.JobTimeoutException'"));
    }

    [Fact]
    public async Task Release_puts_claims_back_to_ready_without_counting_an_attempt()
    {
        var ids = await InsertAsync(Job(), Job(), Job());
        var owner = await RegisterAsync();
        var claimed = await ClaimAsync(owner, 3);
        Assert.Equal(1, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(owner, [claimed[0].ClaimId], T0), default));
        Assert.Equal(JobState.Ready, (await Storage.JobGetAsync(claimed[0].JobId, default))!.State);
        Assert.Equal(2, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(owner, null, T0), default));
        foreach (var id in ids)
        {
            var job = await Storage.JobGetAsync(id, default);
            Assert.Equal((JobState.Ready, 0), (job!.State, job.Attempts));
        }

        var reclaimed = await ClaimAsync(owner, 3);
        Assert.All(reclaimed, c => Assert.Equal(1, c.Attempt));
    }

    [Fact]
    public async Task Deregister_releases_claims_and_deletes_the_process_in_one_step()
    {
        await InsertAsync(Job(), Job());
        var owner = await RegisterAsync();
        await ClaimAsync(owner, 2);
        Assert.Equal(2, await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(owner, T0), default));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(0, await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(owner, T0), default));
    }

    [Fact]
    public async Task A_process_row_with_claims_cannot_be_deleted_so_no_claim_is_ever_orphaned()
    {
        await InsertAsync(Job());
        var owner = await RegisterAsync();
        await ClaimAsync(owner, 1);
        await Assert.ThrowsAnyAsync<Exception>(() => Db.ExecuteAsync("DELETE FROM keel_processes"));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task A_pruned_process_cannot_claim()
    {
        await InsertAsync(Job());
        var owner = await RegisterAsync();
        await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(owner, T0), default);
        await Assert.ThrowsAsync<ProcessGoneException>(() => ClaimAsync(owner, 1));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
    }

    [Fact]
    public async Task Heartbeat_updates_a_live_row_and_reports_a_missing_one()
    {
        var owner = await RegisterAsync();
        Assert.True((await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(owner, T0.AddSeconds(5)), default)).Alive);
        await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(owner, T0), default);
        Assert.False((await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(owner, T0.AddSeconds(10)), default)).Alive);
    }

    [Fact]
    public async Task Process_names_are_unique()
    {
        await RegisterAsync("worker-same");
        await Assert.ThrowsAnyAsync<Exception>(() => RegisterAsync("worker-same"));
    }

    [Fact]
    public async Task Dispatch_moves_due_jobs_in_time_then_priority_order_in_batches()
    {
        var ids = await InsertAsync(
            Job(at: T0.AddSeconds(3), priority: 0),
            Job(at: T0.AddSeconds(1), priority: 5),
            Job(at: T0.AddSeconds(1), priority: 1),
            Job(at: T0.AddHours(1)));
        Assert.Equal(2, await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(2, T0.AddSeconds(10)), default));
        Assert.Equal(JobState.Ready, (await Storage.JobGetAsync(ids[2], default))!.State);
        Assert.Equal(JobState.Ready, (await Storage.JobGetAsync(ids[1], default))!.State);
        Assert.Equal(JobState.Scheduled, (await Storage.JobGetAsync(ids[0], default))!.State);
        Assert.Equal(1, await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(2, T0.AddSeconds(10)), default));
        Assert.Equal(0, await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(2, T0.AddSeconds(10)), default));
        Assert.Equal(JobState.Scheduled, (await Storage.JobGetAsync(ids[3], default))!.State);
    }

    [Fact]
    public async Task Concurrent_dispatchers_never_dispatch_a_job_twice()
    {
        await InsertAsync(Enumerable.Range(0, 400).Select(i => Job(at: T0.AddSeconds(i % 7 + 1))).ToArray());
        var counts = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            var total = 0;
            int moved;
            do
            {
                moved = await Storage.ScheduledDispatchAsync(new ScheduledDispatchParams(25, T0.AddMinutes(1)), default);
                total += moved;
            }
            while (moved > 0);
            return total;
        })));
        Assert.Equal(400, counts.Sum());
        Assert.Equal(400, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_scheduled_executions"));
    }

    [Fact]
    public async Task Insert_on_the_callers_transaction_exists_only_if_the_caller_commits()
    {
        await using (var connection = await Db.OpenAsync())
        {
            await using var rollback = await connection.BeginTransactionAsync();
            var ids = await Storage.JobsInsertAsync(new JobsInsertParams([Job(), Job()], T0, connection, rollback), default);
            Assert.Equal(2, ids.Count);
            await rollback.RollbackAsync();
        }

        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));

        long committedId;
        await using (var connection = await Db.OpenAsync())
        {
            await using var commit = await connection.BeginTransactionAsync();
            committedId = (await Storage.JobsInsertAsync(new JobsInsertParams([Job()], T0, connection, commit), default))[0];
            await commit.CommitAsync();
        }

        Assert.Equal(JobState.Ready, (await Storage.JobGetAsync(committedId, default))!.State);
    }

    [Fact]
    public async Task Insert_on_a_connection_of_another_engine_is_refused_with_a_clear_error()
    {
        await using var foreign = new ForeignConnection();
        var error = await Assert.ThrowsAsync<ArgumentException>(() => Storage.JobsInsertAsync(new JobsInsertParams([Job()], T0, foreign), default));
        Assert.Contains("connection", error.Message, StringComparison.OrdinalIgnoreCase);
    }
#pragma warning restore CS1591
}
