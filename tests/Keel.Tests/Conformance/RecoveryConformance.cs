using System.Diagnostics;
using Keel.Runtime;
using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Keel.Tests.Conformance;

/// <summary>
/// Crash recovery, fast: rows that look abandoned are inserted, one maintenance pass or recovery call runs,
/// and the outcome and recorded cause are checked — on every engine.
/// </summary>
public abstract class RecoveryConformance : IAsyncLifetime
{
    private static readonly WorkerLostCause Cause = new("heartbeat-expired", "heartbeat expired in a test");

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    protected IKeelStorage Storage => Db.Storage;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private async Task<long> RegisterAsync(TimeSpan heartbeatAge, string? hostname = null, int pid = 4242, DateTimeOffset? startedAt = null)
        => await Storage.ProcessRegisterAsync(
            new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", pid, hostname ?? "elsewhere", startedAt ?? DateTimeOffset.UtcNow.AddHours(-1), null, "{}", DateTimeOffset.UtcNow - heartbeatAge),
            default);

    private async Task<IReadOnlyList<ClaimedJob>> ClaimedJobsAsync(long processId, int count, int maxAttempts = 5, int maxWorkerLosses = 2)
    {
        await Storage.JobsInsertAsync(new JobsInsertParams([.. Enumerable.Range(0, count).Select(_ => new NewJob("test", "default", "{}", 0, maxAttempts, null, maxWorkerLosses))], null), default);
        return await Storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, count, null), default);
    }

    private Maintenance NewMaintenance(TimeSpan threshold, params long[] own)
        => new(Storage, new KeelOptions { AliveThreshold = threshold }, NullLogger.Instance, new KeelClock(TimeProvider.System), () => own.ToHashSet());

    [Fact]
    public async Task A_stale_process_is_pruned_and_its_claims_go_back_to_ready_as_counted_attempts()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var claims = await ClaimedJobsAsync(dead, 3);

        var result = await Storage.ProcessRecoverAsync(new ProcessRecoverParams(dead, TimeSpan.FromSeconds(30), Cause, null), default);

        Assert.Equal(new RecoveryResult(3, 0), result);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_processes"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        foreach (var claim in claims)
        {
            var job = (await Storage.JobGetAsync(claim.JobId, default))!;
            Assert.Equal((JobState.Ready, 1, 1), (job.State, job.Attempts, job.WorkerLosses));
            var error = Assert.Single(job.Errors);
            Assert.Equal((WorkerLostCause.ExceptionType, "worker lost: heartbeat expired in a test"), (error.ExceptionType, error.Message));
        }

        Assert.Equal(3, await Db.ScalarAsync("SELECT count(*) FROM keel_job_errors WHERE cause = 'heartbeat-expired'"));
    }

    [Fact]
    public async Task A_process_that_heartbeated_in_time_is_not_pruned()
    {
        var alive = await RegisterAsync(TimeSpan.FromSeconds(1));
        await ClaimedJobsAsync(alive, 2);
        Assert.Null(await Storage.ProcessRecoverAsync(new ProcessRecoverParams(alive, TimeSpan.FromSeconds(30), Cause, null), default));
        Assert.Equal(2, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));
        Assert.Null(await Storage.ProcessRecoverAsync(new ProcessRecoverParams(alive + 1000, null, Cause, null), default));
    }

    [Fact]
    public async Task A_job_that_keeps_losing_its_worker_fails_after_max_worker_losses_plus_one_runs()
    {
        var jobId = 0L;
        for (var run = 1; run <= 3; run++)
        {
            var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
            var claims = run == 1
                ? await ClaimedJobsAsync(dead, 1, maxAttempts: 10, maxWorkerLosses: 2)
                : await Storage.JobsClaimAsync(new JobsClaimParams(dead, QueueFilter.All, 1, null), default);
            jobId = Assert.Single(claims).JobId;
            Assert.Equal(run, claims[0].Attempt);
            var result = await Storage.ProcessRecoverAsync(new ProcessRecoverParams(dead, null, new WorkerLostCause("process-exited", $"process exited with signal 9 (run {run})"), null), default);
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
        Assert.Equal(new RecoveryResult(0, 1), await Storage.ProcessRecoverAsync(new ProcessRecoverParams(dead, null, Cause, null), default));
        Assert.Equal(JobState.Failed, (await Storage.JobGetAsync(claim.JobId, default))!.State);
    }

    [Fact]
    public async Task A_lost_worker_on_the_last_attempt_fails_the_job()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        var claim = Assert.Single(await ClaimedJobsAsync(dead, 1, maxAttempts: 1));
        Assert.Equal(new RecoveryResult(0, 1), await Storage.ProcessRecoverAsync(new ProcessRecoverParams(dead, null, Cause, null), default));
        Assert.Equal(JobState.Failed, (await Storage.JobGetAsync(claim.JobId, default))!.State);
    }

    [Fact]
    public async Task Two_pruners_racing_recover_each_claim_exactly_once()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(5));
        await ClaimedJobsAsync(dead, 100);
        var results = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => Storage.ProcessRecoverAsync(new ProcessRecoverParams(dead, TimeSpan.FromSeconds(30), Cause, null), default))));
        Assert.Equal(100, results.Sum(r => r?.Total ?? 0));
        Assert.Equal(100, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
        Assert.Equal(100, await Db.ScalarAsync("SELECT count(*) FROM keel_job_errors"));
        Assert.Equal(100, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE worker_losses = 1"));
    }

    [Fact]
    public async Task A_late_result_after_recovery_is_rejected_and_the_job_keeps_one_outcome()
    {
        var zombie = await RegisterAsync(TimeSpan.FromMinutes(5));
        var claim = Assert.Single(await ClaimedJobsAsync(zombie, 1));
        await Storage.ProcessRecoverAsync(new ProcessRecoverParams(zombie, null, Cause, null), default);
        var rescuer = await RegisterAsync(TimeSpan.Zero);
        var again = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(rescuer, QueueFilter.All, 1, null), default));
        Assert.Equal(2, again.Attempt);

        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(zombie, [claim.Ref], null, true), default));
        Assert.False(await Storage.JobFailAsync(new JobFailParams(zombie, claim.Ref, new FailureRecord("E", "late", null), null, null), default));
        Assert.Equal(JobState.Claimed, (await Storage.JobGetAsync(claim.JobId, default))!.State);

        Assert.Single(await Storage.JobsCompleteAsync(new JobsCompleteParams(rescuer, [again.Ref], null, true), default));
        var job = (await Storage.JobGetAsync(claim.JobId, default))!;
        Assert.Equal((JobState.Finished, 2), (job.State, job.Attempts));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
    }

    [Fact]
    public async Task Processes_and_claims_are_listed_with_ages_and_staleness()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var alive = await RegisterAsync(TimeSpan.Zero);
        await ClaimedJobsAsync(dead, 2);
        await ClaimedJobsAsync(alive, 1);

        var processes = await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default);
        Assert.Equal([dead, alive], processes.Select(p => p.Id));
        Assert.Equal([2, 1], processes.Select(p => p.Claims));
        Assert.True(processes[0].HeartbeatAge > TimeSpan.FromSeconds(100));
        Assert.Equal([dead], (await Storage.ProcessesListAsync(new ProcessesListParams(TimeSpan.FromSeconds(30), null), default)).Select(p => p.Id));

        var all = await Storage.ClaimsListAsync(new ClaimsListParams(null, null, 10, null), default);
        Assert.Equal(3, all.Count);
        var stale = await Storage.ClaimsListAsync(new ClaimsListParams(null, TimeSpan.FromSeconds(30), 10, null), default);
        Assert.Equal(2, stale.Count);
        Assert.All(stale, c => Assert.True(c.IsStale(TimeSpan.FromSeconds(30)) && c.ProcessId == dead));
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

        var failed = await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([claims[1].ClaimId], ClaimAction.Fail, new WorkerLostCause("operator", "failed by an operator: stuck"), null), default);
        Assert.Equal(new RecoveryResult(0, 1), failed);
        job = (await Storage.JobGetAsync(claims[1].JobId, default))!;
        Assert.Equal((JobState.Failed, 1), (job.State, job.Attempts));
        Assert.Equal("worker lost: failed by an operator: stuck", Assert.Single(job.Errors).Message);
        Assert.Equal(RecoveryResult.None, await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([], ClaimAction.Fail, Cause, null), default));
        Assert.Equal(JobState.Claimed, (await Storage.JobGetAsync(claims[2].JobId, default))!.State);
    }

    [Fact]
    public async Task One_maintenance_pass_prunes_expired_heartbeats_but_not_live_or_own_processes()
    {
        var dead = await RegisterAsync(TimeSpan.FromMinutes(2));
        var deadButOwn = await RegisterAsync(TimeSpan.FromMinutes(2));
        var alive = await RegisterAsync(TimeSpan.FromSeconds(1));
        await ClaimedJobsAsync(dead, 2);

        var pruned = await NewMaintenance(TimeSpan.FromSeconds(30), deadButOwn).RunOnceAsync(default);

        var only = Assert.Single(pruned);
        Assert.Equal((dead, "heartbeat-expired", 2), (only.Process.Id, only.Cause.Code, only.Recovery.Retried));
        Assert.Contains("over the 30 s threshold", only.Cause.Description, StringComparison.Ordinal);
        Assert.Equal([deadButOwn, alive], (await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default)).Select(p => p.Id));
    }

    [Fact]
    public async Task A_process_on_this_host_whose_pid_is_gone_is_pruned_without_waiting_for_its_heartbeat()
    {
        using var exited = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        var startedAt = new DateTimeOffset(exited.StartTime.ToUniversalTime(), TimeSpan.Zero);
        exited.Kill();
        await exited.WaitForExitAsync();
        var gone = await RegisterAsync(TimeSpan.Zero, Environment.MachineName, exited.Id, startedAt);
        var reused = await RegisterAsync(TimeSpan.Zero, Environment.MachineName, Environment.ProcessId, DateTimeOffset.UtcNow.AddDays(-30));
        var me = await RegisterAsync(TimeSpan.Zero, Environment.MachineName, Environment.ProcessId, ProcessIdentityStart());
        await ClaimedJobsAsync(gone, 1);

        var pruned = await NewMaintenance(TimeSpan.FromSeconds(30)).RunOnceAsync(default);

        Assert.Equal([gone, reused], pruned.Select(p => p.Process.Id).Order());
        Assert.All(pruned, p => Assert.Equal("process-missing", p.Cause.Code));
        Assert.Equal([me], (await Storage.ProcessesListAsync(new ProcessesListParams(null, null), default)).Select(p => p.Id));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    private static DateTimeOffset ProcessIdentityStart()
    {
        using var self = Process.GetCurrentProcess();
        return new DateTimeOffset(self.StartTime.ToUniversalTime(), TimeSpan.Zero);
    }
}

public sealed class SqliteRecoveryConformance : RecoveryConformance
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlRecoveryConformance : RecoveryConformance
{
    protected override Engine Engine => Engine.PostgreSql;
}
