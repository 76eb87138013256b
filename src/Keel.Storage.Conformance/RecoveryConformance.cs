using System.Diagnostics;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keel.Storage.Conformance;

/// <summary>
/// Crash recovery, fast: rows that look abandoned are inserted, one maintenance pass or recovery call runs,
/// and the outcome, the charge (DESIGN §2.5) and the recorded runs are checked — on every engine.
/// </summary>
public abstract class RecoveryConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private static readonly WorkerLostCause Cause = new("lease-expired", "lease expired in a test");


    /// <summary>A process whose lease (30 s) was last renewed <paramref name="heartbeatAge"/> ago.</summary>
    private async Task<long> RegisterAsync(TimeSpan heartbeatAge, string? hostId = null, int pid = 4242, long? startTicks = null)
        => await Storage.ProcessRegisterAsync(
            new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", pid, "elsewhere", DateTimeOffset.UtcNow.AddHours(-1), null, "{}", DateTimeOffset.UtcNow - heartbeatAge)
            {
                HostId = hostId,
                PidStartTicks = startTicks,
            },
            default);

    private async Task<IReadOnlyList<ClaimedJob>> ClaimedJobsAsync(long processId, int count, int maxAttempts = 5, int maxWorkerLosses = 2)
    {
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(_ => new NewJob("test", "default", "{}", 0, maxAttempts, null, maxWorkerLosses))], null), default);
        return await Storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, count, null), default);
    }

    private Maintenance NewMaintenance(TimeSpan threshold, params long[] own)
    {
        var maintenance = new Maintenance(Storage, new KeelOptions { AliveThreshold = threshold, HeartbeatInterval = threshold / 6 }, NullLogger.Instance, new KeelClock(TimeProvider.System), () => own.ToHashSet());
        maintenance.AssumeConnectedFor(TimeSpan.FromHours(1));
        return maintenance;
    }

    [Fact]
    public async Task A_process_that_died_holding_one_job_is_charged_for_it()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var claim = Assert.Single(await ClaimedJobsAsync(dead, 1));

        var result = await Storage.ProcessRecoverAsync(new ProcessRecoverParams([dead], RecoverCondition.LeaseExpired, Cause, null), default);

        Assert.Equal(new RecoveryResult(1, 0), result);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        var job = (await Storage.JobGetAsync(claim.JobId, default))!;
        Assert.Equal((JobState.Ready, 1, 1, true), (job.State, job.Attempts, job.WorkerLosses, job.Suspect));
        var error = Assert.Single(job.Errors);
        Assert.Equal((WorkerLostCause.ExceptionType, "worker lost: lease expired in a test"), (error.ExceptionType, error.Message));
        var run = Assert.Single(job.Runs);
        Assert.Equal((RunOutcomes.Lost, "lease-expired", true, 1, claim.ClaimId), (run.Outcome, run.Cause, run.Charged, run.Attempt, run.ClaimId));
        Assert.Equal((dead, 4242), (run.Runner!.ProcessId, run.Runner.Pid));
        Assert.Empty(run.SharedWith);
    }

    [Fact]
    public async Task Jobs_that_shared_a_dying_process_are_charged_nothing_and_become_suspects_at_the_second_death()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var claims = await ClaimedJobsAsync(dead, 3);
        var killed = new WorkerLostCause("process-exited", "killed by signal 9");

        var result = await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, killed, null), default);

        Assert.Equal(new RecoveryResult(0, 0, 3), result);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_errors"));
        foreach (var claim in claims)
        {
            var job = (await Storage.JobGetAsync(claim.JobId, default))!;
            Assert.Equal((JobState.Ready, 0, 0, 1, false), (job.State, job.Attempts, job.WorkerLosses, job.SharedLosses, job.Suspect));
            var run = Assert.Single(job.Runs);
            Assert.Equal((RunOutcomes.Lost, "process-exited", false), (run.Outcome, run.Cause, run.Charged));
            Assert.Equal(claims.Select(c => c.JobId).Where(id => id != claim.JobId).Order(), run.SharedWith.Order());
        }

        // One shared death is most likely not theirs (a kill, an eviction): they run together again at once.
        var second = await RegisterAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(claims.Select(c => c.JobId).Order(), (await Storage.JobsClaimAsync(new JobsClaimParams(second, QueueFilter.All, 3, null), default)).Select(c => c.JobId).Order());
        Assert.Equal(new RecoveryResult(0, 0, 3), await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(second, killed, null), default));
        foreach (var claim in claims)
        {
            var job = (await Storage.JobGetAsync(claim.JobId, default))!;
            Assert.Equal((JobState.Ready, 0, 0, 2, true), (job.State, job.Attempts, job.WorkerLosses, job.SharedLosses, job.Suspect));
        }

        // A suspect is claimed only by a claim that asks for suspects (and then runs alone).
        var rescuer = await RegisterAsync(TimeSpan.Zero);
        Assert.Empty(await Storage.JobsClaimAsync(new JobsClaimParams(rescuer, QueueFilter.All, 10, null), default));
        var suspect = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(rescuer, QueueFilter.All, 1, null) { Suspects = true }, default));
        Assert.True(suspect.Suspect);
        Assert.Equal(1, suspect.Attempt);

        // Running alone, it dies again: now it is the culprit.
        Assert.Equal(new RecoveryResult(1, 0), await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(rescuer, killed, null), default));
        var charged = (await Storage.JobGetAsync(suspect.JobId, default))!;
        Assert.Equal((1, 1, true), (charged.Attempts, charged.WorkerLosses, charged.Suspect));
    }

    [Fact]
    public async Task A_suspect_that_ends_by_itself_is_cleared()
    {
        await TwiceSharedDeathsAsync(2);
        var rescuer = await RegisterAsync(TimeSpan.Zero);
        var first = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(rescuer, QueueFilter.All, 1, null) { Suspects = true }, default));
        var second = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(rescuer, QueueFilter.All, 1, null) { Suspects = true }, default));

        Assert.Single(await Storage.JobsCompleteAsync(new JobsCompleteParams(rescuer, [first.Ref], null, true) { Runner = new Runner(rescuer, "worker-r", 7, "h").ToJson() }, default));
        Assert.True(await Storage.JobFailAsync(new JobFailParams(rescuer, second.Ref, new FailureRecord("E", "boom", null), DateTimeOffset.UtcNow.AddHours(1), null), default));

        var finished = (await Storage.JobGetAsync(first.JobId, default))!;
        Assert.Equal((false, 0), (finished.Suspect, finished.SharedLosses));
        Assert.Equal([RunOutcomes.Lost, RunOutcomes.Lost, JobRun.Finished], finished.Runs.Select(r => r.Outcome));
        Assert.Equal(("worker-r", 7, "h"), (finished.Runs[^1].Runner!.Name, finished.Runs[^1].Runner!.Pid, finished.Runs[^1].Runner!.Host));
        var retried = (await Storage.JobGetAsync(second.JobId, default))!;
        Assert.Equal((false, 0), (retried.Suspect, retried.SharedLosses));
        Assert.Equal([RunOutcomes.Lost, RunOutcomes.Lost, RunOutcomes.Failed], retried.Runs.Select(r => r.Outcome));
    }

    [Fact]
    public async Task A_claim_marked_unresponsive_is_charged_alone_and_its_neighbours_are_released()
    {
        var dead = await RegisterAsync(TimeSpan.Zero);
        var claims = await ClaimedJobsAsync(dead, 3);
        Assert.Equal(1, await Storage.ClaimsMarkUnresponsiveAsync(new ClaimsMarkUnresponsiveParams(dead, [claims[1].ClaimId], null), default));

        var result = await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("cancel-ignored", "did not stop when cancelled"), null), default);

        Assert.Equal(new RecoveryResult(1, 0, 2), result);
        var culprit = (await Storage.JobGetAsync(claims[1].JobId, default))!;
        Assert.Equal((1, 1), (culprit.Attempts, culprit.WorkerLosses));
        foreach (var neighbour in new[] { claims[0], claims[2] })
        {
            var job = (await Storage.JobGetAsync(neighbour.JobId, default))!;
            Assert.Equal((JobState.Ready, 0, 0, false), (job.State, job.Attempts, job.WorkerLosses, job.Suspect));
        }
    }

    [Fact]
    public async Task A_process_that_began_a_graceful_stop_or_an_uncharged_recovery_charges_nothing()
    {
        var stopping = await RegisterAsync(TimeSpan.Zero);
        var claim = Assert.Single(await ClaimedJobsAsync(stopping, 1));
        Assert.True(await Storage.ProcessStoppingAsync(new ProcessStoppingParams(stopping, null), default));
        Assert.Equal(new RecoveryResult(0, 0, 1), await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(stopping, new WorkerLostCause("process-missing", "gone"), null), default));
        Assert.Equal((0, 0, false), await LossesAsync(claim.JobId));

        var outage = await RegisterAsync(TimeSpan.FromMinutes(2));
        claim = Assert.Single(await ClaimedJobsAsync(outage, 1));
        Assert.Equal(new RecoveryResult(0, 0, 1), await Storage.ProcessRecoverAsync(new ProcessRecoverParams([outage], RecoverCondition.LeaseExpired, Cause, null) { Charge = RecoveryCharge.None }, default));
        Assert.Equal((0, 0, false), await LossesAsync(claim.JobId));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_errors"));
    }

    /// <summary>Jobs that were running together when their process died, twice: suspects.</summary>
    private async Task<IReadOnlyList<ClaimedJob>> TwiceSharedDeathsAsync(int count)
    {
        IReadOnlyList<ClaimedJob> claims = [];
        foreach (var round in new[] { 1, 2 })
        {
            var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
            claims = round == 1 ? await ClaimedJobsAsync(dead, count) : await Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, count, null), default);
            Assert.Equal(count, claims.Count);
            await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("process-exited", $"killed ({round})"), null), default);
        }

        return claims;
    }

    private async Task<(int Attempts, int Losses, bool Suspect)> LossesAsync(long jobId)
    {
        var job = (await Storage.JobGetAsync(jobId, default))!;
        return (job.Attempts, job.WorkerLosses, job.Suspect);
    }

    [Fact]
    public async Task The_rows_of_one_os_process_are_recovered_together_and_share_the_blame()
    {
        var workerA = await RegisterAsync(TimeSpan.Zero);
        var workerB = await RegisterAsync(TimeSpan.Zero);
        var a = Assert.Single(await ClaimedJobsAsync(workerA, 1));
        var b = Assert.Single(await ClaimedJobsAsync(workerB, 1));

        var result = await Storage.ProcessRecoverAsync(new ProcessRecoverParams([workerA, workerB], RecoverCondition.None, new WorkerLostCause("process-missing", "gone"), null), default);

        Assert.Equal(new RecoveryResult(0, 0, 2), result);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal([b.JobId], (await Storage.JobGetAsync(a.JobId, default))!.Runs.Single().SharedWith);
        Assert.Equal((1, false), ((await Storage.JobGetAsync(b.JobId, default))!.SharedLosses, (await Storage.JobGetAsync(b.JobId, default))!.Suspect));
    }

    [Fact]
    public async Task A_process_whose_lease_was_renewed_is_not_pruned()
    {
        var alive = await RegisterAsync(TimeSpan.FromSeconds(1));
        await ClaimedJobsAsync(alive, 2);
        Assert.Null(await Storage.ProcessRecoverAsync(new ProcessRecoverParams([alive], RecoverCondition.LeaseExpired, Cause, null), default));
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Null(await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(alive + 1000, Cause, null), default));

        var lapsed = await RegisterAsync(TimeSpan.FromMinutes(2));
        Assert.True((await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(lapsed, null), default)).Alive);
        Assert.Null(await Storage.ProcessRecoverAsync(new ProcessRecoverParams([lapsed], RecoverCondition.LeaseExpired, Cause, null), default));
    }

    [Fact]
    public async Task A_heartbeat_renews_the_lease_for_its_duration_and_returns_the_claims_held()
    {
        var owner = await RegisterAsync(TimeSpan.Zero);
        var claims = await ClaimedJobsAsync(owner, 2);
        var beat = await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(owner, null) { LeaseDuration = TimeSpan.FromMinutes(10), ReturnClaims = true }, default);
        Assert.True(beat.Alive);
        Assert.Equal(claims.Select(c => c.ClaimId).Order(), beat.ClaimIds!.Order());
        var row = Assert.Single(await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default));
        Assert.InRange(row.LeaseRemaining, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
        Assert.Null((await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(owner, null), default)).ClaimIds);
    }

    [Fact]
    public async Task A_job_that_keeps_losing_its_worker_alone_fails_after_max_worker_losses_plus_one_runs()
    {
        var jobId = 0L;
        for (var run = 1; run <= 3; run++)
        {
            var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
            var claims = run == 1
                ? await ClaimedJobsAsync(dead, 1, maxAttempts: 10, maxWorkerLosses: 2)
                : await Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, 1, null) { Suspects = true }, default);
            jobId = Assert.Single(claims).JobId;
            Assert.Equal(run, claims[0].Attempt);
            var result = await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("process-exited", $"process exited with signal 9 (run {run})"), null), default);
            Assert.Equal(run <= 2 ? new RecoveryResult(1, 0) : new RecoveryResult(0, 1), result);
        }

        var job = (await Storage.JobGetAsync(jobId, default))!;
        Assert.Equal((JobState.Failed, 3, 3), (job.State, job.Attempts, job.WorkerLosses));
        Assert.Equal("worker lost: process exited with signal 9 (run 3)", job.Errors[^1].Message);
        Assert.Equal(1, await Db.ScalarAsync($"SELECT count(*) FROM keel_failed_executions WHERE job_id = {jobId} AND cause = 'process-exited' AND exception_type = 'Keel.WorkerLostException'"));
    }

    [Fact]
    public async Task The_fail_policy_fails_a_job_at_its_first_lost_worker()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        var claim = Assert.Single(await ClaimedJobsAsync(dead, 1, maxWorkerLosses: 0));
        Assert.Equal(new RecoveryResult(0, 1), await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, Cause, null), default));
        Assert.Equal(JobState.Failed, (await Storage.JobGetAsync(claim.JobId, default))!.State);
    }

    [Fact]
    public async Task A_lost_worker_on_the_last_attempt_fails_the_job()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        var claim = Assert.Single(await ClaimedJobsAsync(dead, 1, maxAttempts: 1));
        Assert.Equal(new RecoveryResult(0, 1), await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, Cause, null), default));
        Assert.Equal(JobState.Failed, (await Storage.JobGetAsync(claim.JobId, default))!.State);
    }

    [Fact]
    public async Task Two_pruners_racing_recover_each_claim_exactly_once()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        await ClaimedJobsAsync(dead, 100);
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => Storage.ProcessRecoverAsync(new ProcessRecoverParams([dead], RecoverCondition.LeaseExpired, Cause, null), default))));
        Assert.Equal(100, results.Sum(r => r?.Total ?? 0));
        Assert.Single(results, r => r is not null);
        Assert.Equal(100, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(100, await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs"));
        Assert.Equal(100, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE worker_losses = 0"));
    }

    [Fact]
    public async Task A_claimer_racing_the_prune_of_its_process_stops_and_no_claim_is_orphaned()
    {
        // DESIGN §2.3: claims reference their process, so a claim inserted while the process row is being deleted
        // either is recovered with it or fails, and the claimer learns its process is gone. Errors the store calls
        // transient (IKeelStorage.IsTransient) are retried, as the runtime does; any other error fails the test.
        var doomed = await RegisterAsync(TimeSpan.FromMinutes(5));
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, 300).Select(_ => new NewJob("test", "default", "{}", 0, 5, null))], null), default);
        var claimerStore = Db.NewStorage();
        try
        {
            var claimer = Task.Run(async () =>
            {
                // Generous: on a loaded machine the prune may come late, and the claimer must still be trying when it does.
                var deadline = DateTime.UtcNow.AddSeconds(120);
                while (DateTime.UtcNow < deadline)
                {
                    try
                    {
                        await claimerStore.JobsClaimAsync(new JobsClaimParams(doomed, QueueFilter.All, 1, null), default);
                    }
                    catch (ProcessGoneException)
                    {
                        return true;
                    }
                    catch (Exception e) when (claimerStore.IsTransient(e))
                    {
                        // A deadlock with the prune, say (InnoDB): the runtime retries these, and so does the test.
                    }
                }

                return false;
            });
            await Eventually.WaitUntilAsync(async () => await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions") >= 20, TimeSpan.FromSeconds(15), "the claimer holds some jobs");

            RecoveryResult? result = null;
            var pruneDeadline = DateTime.UtcNow.AddSeconds(60);
            while (result is null && DateTime.UtcNow < pruneDeadline)
            {
                try
                {
                    // No result: the process row was locked by a claim in flight (SKIP LOCKED) and nothing was pruned;
                    // the runtime's maintenance tries again at its next pass, and so does the test.
                    result = await Storage.ProcessRecoverAsync(new ProcessRecoverParams([doomed], RecoverCondition.LeaseExpired, Cause, null), default);
                }
                catch (Exception e) when (Storage.IsTransient(e))
                {
                    // Retried, as the runtime's maintenance does; nothing was recovered by the failed attempt.
                }
            }

            Assert.True(result is not null, "the prune never took the process row away from its claimer");

            Assert.True(await claimer, "the claimer never learned that its process was pruned");
            Assert.NotNull(result);
            Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
            Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
            Assert.Equal(300, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
            Assert.Equal(result.Total, await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs"));
            Assert.True(result.Total >= 20);
        }
        finally
        {
            if (claimerStore is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_late_result_after_recovery_is_rejected_and_the_job_keeps_one_outcome()
    {
        var zombie = await RegisterAsync(TimeSpan.FromMinutes(5));
        var claim = Assert.Single(await ClaimedJobsAsync(zombie, 1));
        await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(zombie, Cause, null), default);
        var rescuer = await RegisterAsync(TimeSpan.Zero);
        var again = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(rescuer, QueueFilter.All, 1, null) { Suspects = true }, default));
        Assert.Equal(2, again.Attempt);
        Assert.True(again.ClaimId > claim.ClaimId, "a later claim of the same job carries a larger fencing token");

        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(zombie, [claim.Ref], null, true), default));
        Assert.False(await Storage.JobFailAsync(new JobFailParams(zombie, claim.Ref, new FailureRecord("E", "late", null), null, null), default));
        Assert.False(await Storage.ClaimHeldAsync(new ClaimHeldParams(zombie, claim.Ref, null), default));
        Assert.True(await Storage.ClaimHeldAsync(new ClaimHeldParams(rescuer, again.Ref, null), default));
        Assert.Equal(JobState.Claimed, (await Storage.JobGetAsync(claim.JobId, default))!.State);

        Assert.Single(await Storage.JobsCompleteAsync(new JobsCompleteParams(rescuer, [again.Ref], null, true), default));
        var job = (await Storage.JobGetAsync(claim.JobId, default))!;
        Assert.Equal((JobState.Finished, 2), (job.State, job.Attempts));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
    }

    [Fact]
    public async Task Processes_and_claims_are_listed_with_ages_leases_and_staleness()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var alive = await RegisterAsync(TimeSpan.Zero);
        await ClaimedJobsAsync(dead, 2);
        await ClaimedJobsAsync(alive, 1);

        var processes = await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default);
        Assert.Equal([dead, alive], processes.Select(p => p.Id));
        Assert.Equal([2, 1], processes.Select(p => p.Claims));
        Assert.True(processes[0].HeartbeatAge > TimeSpan.FromSeconds(100));
        Assert.Equal([true, false], processes.Select(p => p.LeaseExpired));
        Assert.Equal([dead], (await Storage.ProcessesListAsync(new ProcessesListParams(TimeSpan.FromSeconds(30), null), default)).Select(p => p.Id));

        var all = await Storage.ClaimsListAsync(new ClaimsListParams(null, null, 10, null), default);
        Assert.Equal(3, all.Count);
        var stale = await Storage.ClaimsListAsync(new ClaimsListParams(null, TimeSpan.FromSeconds(30), 10, null), default);
        Assert.Equal(2, stale.Count);
        Assert.All(stale, c => Assert.True(c.IsStale(TimeSpan.FromSeconds(30)) && c.ProcessId == dead && c.LeaseRemaining < TimeSpan.Zero));
        Assert.Single(await Storage.ClaimsListAsync(new ClaimsListParams(alive, null, 10, null), default));
        Assert.Single(await Storage.ClaimsListAsync(new ClaimsListParams(null, null, 1, null), default));
    }

    [Fact]
    public async Task Operators_release_or_fail_chosen_claims_whoever_owns_them()
    {
        var owner = await RegisterAsync(TimeSpan.Zero);
        var claims = await ClaimedJobsAsync(owner, 3);
        var released = await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([claims[0].ClaimId, 999_999], ClaimAction.Release, new WorkerLostCause("operator", "released"), null), default);
        Assert.Equal(new RecoveryResult(0, 0, 1), released);
        var job = (await Storage.JobGetAsync(claims[0].JobId, default))!;
        Assert.Equal((JobState.Ready, 0, 0), (job.State, job.Attempts, job.WorkerLosses));
        Assert.Equal((RunOutcomes.Released, "operator"), (job.Runs.Single().Outcome, job.Runs.Single().Cause));

        var failed = await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([claims[1].ClaimId], ClaimAction.Fail, new WorkerLostCause("operator", "failed by an operator: stuck"), null), default);
        Assert.Equal(new RecoveryResult(0, 1), failed);
        job = (await Storage.JobGetAsync(claims[1].JobId, default))!;
        Assert.Equal((JobState.Failed, 1), (job.State, job.Attempts));
        Assert.Equal("worker lost: failed by an operator: stuck", Assert.Single(job.Errors).Message);
        Assert.Equal(RecoveryResult.None, await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([], ClaimAction.Fail, Cause, null), default));
        Assert.Equal(JobState.Claimed, (await Storage.JobGetAsync(claims[2].JobId, default))!.State);
    }

    [Fact]
    public async Task One_maintenance_pass_prunes_expired_leases_but_not_live_or_own_processes()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var deadButOwn = await RegisterAsync(TimeSpan.FromMinutes(2));
        var alive = await RegisterAsync(TimeSpan.FromSeconds(1));
        await ClaimedJobsAsync(dead, 2);

        var pruned = await NewMaintenance(TimeSpan.FromSeconds(30), deadButOwn).RunOnceAsync(default);

        var only = Assert.Single(pruned);
        Assert.Equal((dead, "lease-expired", 2), (only.Process.Id, only.Cause.Code, only.Recovery.Released));
        Assert.Contains("lease expired", only.Cause.Description, StringComparison.Ordinal);
        Assert.Equal([deadButOwn, alive], (await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default)).Select(p => p.Id));
    }

    [Fact]
    public async Task A_fresh_pruner_waits_for_live_processes_to_renew_before_judging_leases()
    {
        var lapsed = await RegisterAsync(TimeSpan.FromMinutes(2));
        var options = new KeelOptions { AliveThreshold = TimeSpan.FromSeconds(30), HeartbeatInterval = TimeSpan.FromMilliseconds(300) };
        var maintenance = new Maintenance(Storage, options, NullLogger.Instance, new KeelClock(TimeProvider.System), () => new HashSet<long>());

        Assert.Empty(await maintenance.RunOnceAsync(default)); // Just connected: the database may have been away for everyone.
        var connected = Stopwatch.StartNew();
        Assert.True((await Storage.ProcessHeartbeatAsync(new ProcessHeartbeatParams(lapsed, null), default)).Alive);

        // Measured on the same clock as the pruner's: a timer may fire a millisecond before the stopwatch agrees.
        while (connected.Elapsed < options.HeartbeatInterval * 2)
        {
            await Task.Delay(options.HeartbeatInterval * 2 - connected.Elapsed + TimeSpan.FromMilliseconds(5));
        }

        Assert.Empty(await maintenance.RunOnceAsync(default)); // It renewed meanwhile.

        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var claim = Assert.Single(await ClaimedJobsAsync(dead, 1));
        var pruned = Assert.Single(await maintenance.RunOnceAsync(default));
        Assert.Equal(dead, pruned.Process.Id);
        Assert.Equal((0, 0), ((await LossesAsync(claim.JobId)).Attempts, (await LossesAsync(claim.JobId)).Losses)); // Not yet connected for a whole lease: uncharged.
    }

    [Fact]
    public async Task A_process_on_this_host_whose_pid_is_gone_is_pruned_without_waiting_for_its_lease()
    {
        using var exited = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var ticks = HostProcess.StartTicks(exited.Id);
        Assert.NotNull(ticks);
        exited.Kill();
        await exited.WaitForExitAsync();
        var host = HostProcess.HostId;
        Assert.NotNull(host);
        var gone = await RegisterAsync(TimeSpan.Zero, host, exited.Id, ticks);
        var reused = await RegisterAsync(TimeSpan.Zero, host, Environment.ProcessId, HostProcess.SelfStartTicks - 1000);
        var me = await RegisterAsync(TimeSpan.Zero, host, Environment.ProcessId, HostProcess.SelfStartTicks);
        var otherNamespace = await RegisterAsync(TimeSpan.Zero, host + "-other-pid-namespace", exited.Id, ticks);
        var unknownHost = await RegisterAsync(TimeSpan.Zero, null, exited.Id, ticks);
        await ClaimedJobsAsync(gone, 1);

        var pruned = await NewMaintenance(TimeSpan.FromSeconds(30)).RunOnceAsync(default);

        Assert.Equal([gone, reused], pruned.Select(p => p.Process.Id).Order());
        Assert.All(pruned, p => Assert.Equal("process-missing", p.Cause.Code));
        Assert.Equal([me, otherNamespace, unknownHost], (await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default)).Select(p => p.Id));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task A_run_recorded_by_its_worker_joins_the_history_and_one_for_a_gone_job_changes_nothing()
    {
        var owner = await RegisterAsync(TimeSpan.Zero);
        var claim = Assert.Single(await ClaimedJobsAsync(owner, 1));
        var runner = new Runner(owner, "worker-x", 99, "host-x").ToJson();

        await Storage.RunRecordAsync(new RunRecordParams(claim.Ref, new RunEnding(RunOutcomes.Abandoned, "cancel-ignored", "ignored its cancellation"), runner, claim.ClaimedAt, null), default);
        await Storage.RunRecordAsync(new RunRecordParams(claim.Ref with { JobId = claim.JobId + 1000 }, new RunEnding(RunOutcomes.Rejected, "claim-lost", "late"), runner, null, null), default);

        var job = (await Storage.JobGetAsync(claim.JobId, default))!;
        Assert.Equal([RunOutcomes.Abandoned, JobRun.Running], job.Runs.Select(r => r.Outcome));
        Assert.Equal(("cancel-ignored", "worker-x", 99, "host-x"), (job.Runs[0].Cause, job.Runs[0].Runner!.Name, job.Runs[0].Runner!.Pid, job.Runs[0].Runner!.Host));
        Assert.Equal((claim.ClaimId, owner), (job.Runs[1].ClaimId, job.Runs[1].Runner!.ProcessId));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_job_runs"));
    }

    [Fact]
    public async Task Claim_calls_without_suspects_never_claim_one_and_a_release_keeps_it_a_suspect()
    {
        var claims = await TwiceSharedDeathsAsync(2);
        var worker = await RegisterAsync(TimeSpan.Zero);
        var suspect = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.Parse("default"), 1, null) { Suspects = true }, default));

        Assert.Equal(1, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(worker, [suspect.ClaimId], null) { Reason = new RunEnding(RunOutcomes.Released, "stop", "stopping") }, default));

        var job = (await Storage.JobGetAsync(suspect.JobId, default))!;
        Assert.True(job.Suspect);
        Assert.Equal((RunOutcomes.Released, "stop", false), (job.Runs[^1].Outcome, job.Runs[^1].Cause, job.Runs[^1].Charged));
        Assert.Empty(await Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.Parse("def*"), 5, null), default));
        Assert.Equal(claims.Select(c => c.JobId).Order(), (await Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.Parse("def*"), 5, null) { Suspects = true }, default)).Select(c => c.JobId).Order());
    }
#pragma warning restore CS1591
}
