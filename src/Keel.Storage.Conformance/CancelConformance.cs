using Keel.Runtime;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Keel.Storage.Conformance;

/// <summary>
/// Cancel of any job (docs/running-jobs.md): discarded at once before it starts; a request stored on the claim of a
/// running one, read by its process only; the cancelled run's end fenced by its claim; cancel racing completion; and
/// the request honoured by a release or by the recovery of a process that died with it — on every engine.
/// </summary>
public abstract class CancelConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private static readonly RunEnding Honoured = new(RunOutcomes.Cancelled, RunCauses.CancelHonoured, "stop it: a test");

    private KeelAdmin NewAdmin() => new(Storage, Options.Create(new KeelOptions()), NullLoggerFactory.Instance, new KeelClock(TimeProvider.System), new JobSignal());

    private async Task<long> RegisterAsync()
        => await Storage.ProcessRegisterAsync(new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 4242, "elsewhere", DateTimeOffset.UtcNow.AddHours(-1), null, "{}", null), default);

    private async Task<IReadOnlyList<long>> InsertAsync(params NewJob[] jobs) => await Storage.JobsInsertAsync(new JobsInsertParams(jobs, null), default);

    private static NewJob Plain(DateTimeOffset? at = null) => new("test", "default", "{}", 0, 5, at);

    private async Task<ClaimedJob> ClaimOneAsync(long processId)
        => Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, 1, null), default));

    private async Task<JobInfo> JobAsync(long jobId) => (await Storage.JobGetAsync(jobId, default))!;

    private static JobRun CancelledRun(JobInfo job) => Assert.Single(job.Runs, r => r.Outcome == RunOutcomes.Cancelled);

    [Fact]
    public async Task A_job_that_has_not_started_is_discarded_at_once_with_the_reason_in_its_history()
    {
        var admin = NewAdmin();
        var ids = await InsertAsync(Plain(), Plain(DateTimeOffset.UtcNow.AddHours(1)));

        Assert.Equal(CancelResult.Cancelled, await admin.CancelAsync(ids[0], "wrong customer"));
        Assert.Equal(CancelResult.Cancelled, await admin.CancelAsync(ids[1]));

        var ready = await JobAsync(ids[0]);
        Assert.Equal(JobState.Discarded, ready.State);
        var run = CancelledRun(ready);
        Assert.Equal((RunCauses.CancelledBeforeStart, "wrong customer", false, (long?)null), (run.Cause, run.Detail, run.Charged, run.ClaimId));
        Assert.Equal("cancelled by an operator", CancelledRun(await JobAsync(ids[1])).Detail);
        Assert.Equal(CancelResult.AlreadyEnded, await admin.CancelAsync(ids[0]));
        Assert.Equal(CancelResult.NotFound, await admin.CancelAsync(ids[1] + 1000));
    }

    [Fact]
    public async Task A_running_job_gets_a_request_on_its_claim_that_only_its_own_process_reads()
    {
        var admin = NewAdmin();
        var worker = await RegisterAsync();
        var other = await RegisterAsync();
        await InsertAsync(Plain(), Plain());
        var cancelled = await ClaimOneAsync(worker);
        var untouched = await ClaimOneAsync(worker);

        Assert.Empty(await Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(cancelled.JobId, "customer asked"));
        Assert.Equal(CancelResult.AlreadyRequested, await admin.CancelAsync(cancelled.JobId, "asked again"));

        var request = Assert.Single(await Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
        Assert.Equal((cancelled.ClaimId, cancelled.JobId, "customer asked"), (request.ClaimId, request.JobId, request.Reason));
        Assert.Empty(await Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(other), default));

        // Still running until its run ends: a request changes nothing else.
        Assert.Equal(JobState.Claimed, (await JobAsync(cancelled.JobId)).State);
        Assert.Equal(JobState.Claimed, (await JobAsync(untouched.JobId)).State);
    }

    [Fact]
    public async Task A_cancelled_run_ends_discarded_under_its_claim_and_only_once()
    {
        var worker = await RegisterAsync();
        var stranger = await RegisterAsync();
        await InsertAsync(Plain());
        var claim = await ClaimOneAsync(worker);
        await NewAdmin().CancelAsync(claim.JobId, "stop it: a test");

        Assert.False(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(stranger, claim.Ref, Honoured, null), default));
        Assert.True(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(worker, claim.Ref, Honoured, null) { Runner = "{\"process\":1,\"name\":\"w\",\"pid\":1,\"host\":\"h\"}" }, default));
        Assert.False(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(worker, claim.Ref, Honoured, null), default));

        var job = await JobAsync(claim.JobId);
        Assert.Equal(JobState.Discarded, job.State);
        var run = CancelledRun(job);
        Assert.Equal((RunCauses.CancelHonoured, "stop it: a test", claim.ClaimId, claim.Attempt), (run.Cause, run.Detail, run.ClaimId, run.Attempt));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_claimed_executions"));

        // Discarded by a cancel, it is never retried unless someone asks: a retry of failed jobs does not touch it.
        Assert.Equal(0, await Storage.JobsRetryAsync(new JobsSelectionParams([claim.JobId], null, null, 10, null), default));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task Cancel_racing_completion_has_exactly_one_winner_and_the_history_says_which()
    {
        var admin = NewAdmin();
        var worker = await RegisterAsync();
        await InsertAsync(Plain(), Plain());

        // The completion commits first: the cancel finds nothing to stop.
        var completedFirst = await ClaimOneAsync(worker);
        Assert.Equal([completedFirst.ClaimId], await Storage.JobsCompleteAsync(new JobsCompleteParams(worker, [completedFirst.Ref], null, true), default));
        Assert.Equal(CancelResult.AlreadyEnded, await admin.CancelAsync(completedFirst.JobId));
        Assert.False(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(worker, completedFirst.Ref, Honoured, null), default));
        var finished = await JobAsync(completedFirst.JobId);
        Assert.Equal(JobState.Finished, finished.State);
        Assert.DoesNotContain(finished.Runs, r => r.Outcome == RunOutcomes.Cancelled);

        // The cancel is written first: the completion is rejected as a late result.
        var cancelledFirst = await ClaimOneAsync(worker);
        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(cancelledFirst.JobId));
        Assert.True(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(worker, cancelledFirst.Ref, Honoured, null), default));
        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(worker, [cancelledFirst.Ref], null, true), default));
        var discarded = await JobAsync(cancelledFirst.JobId);
        Assert.Equal(JobState.Discarded, discarded.State);
        CancelledRun(discarded);
    }

    [Fact]
    public async Task A_request_stored_before_the_run_completes_loses_to_the_completion()
    {
        var worker = await RegisterAsync();
        await InsertAsync(Plain());
        var claim = await ClaimOneAsync(worker);
        Assert.Equal(CancelResult.Requested, await NewAdmin().CancelAsync(claim.JobId));

        // The run finished before it saw its token: it finished, and the request went with its claim.
        Assert.Equal([claim.ClaimId], await Storage.JobsCompleteAsync(new JobsCompleteParams(worker, [claim.Ref], null, true), default));
        var job = await JobAsync(claim.JobId);
        Assert.Equal(JobState.Finished, job.State);
        Assert.DoesNotContain(job.Runs, r => r.Outcome == RunOutcomes.Cancelled);
        Assert.Empty(await Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
    }

    [Fact]
    public async Task A_run_that_fails_before_it_sees_its_cancel_ends_cancelled_and_is_not_retried()
    {
        var worker = await RegisterAsync();
        await InsertAsync(Plain());
        var claim = await ClaimOneAsync(worker);
        await NewAdmin().CancelAsync(claim.JobId, "stop it");

        Assert.True(await Storage.JobFailAsync(new JobFailParams(worker, claim.Ref, new FailureRecord("System.IO.IOException", "disk", null), DateTimeOffset.UtcNow.AddSeconds(-1), null), default));

        var job = await JobAsync(claim.JobId);
        Assert.Equal(JobState.Discarded, job.State);
        var run = CancelledRun(job);
        Assert.Equal((RunCauses.CancelHonoured, false), (run.Cause, run.Charged));
        Assert.Equal("stop it (its run failed first: System.IO.IOException: disk)", run.Detail);
        Assert.Single(job.Errors);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions") + await Db.ScalarAsync("SELECT count(*) FROM keel_scheduled_executions") + await Db.ScalarAsync("SELECT count(*) FROM keel_failed_executions"));
    }

    [Fact]
    public async Task A_process_that_dies_with_a_cancelled_run_has_that_job_discarded_and_its_other_job_released_uncharged()
    {
        var worker = await RegisterAsync();
        await InsertAsync(Plain(), Plain());
        var cancelled = await ClaimOneAsync(worker);
        var sibling = await ClaimOneAsync(worker);
        await NewAdmin().CancelAsync(cancelled.JobId, "stop the import");

        var result = await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(worker, new WorkerLostCause("process-exited", "killed by signal 9"), null), default);

        Assert.Equal((0, 0, 1, 1), (result!.Retried, result.Failed, result.Released, result.Cancelled));
        var discarded = await JobAsync(cancelled.JobId);
        Assert.Equal((JobState.Discarded, 0), (discarded.State, discarded.Attempts));
        var run = CancelledRun(discarded);
        Assert.Equal((RunCauses.CancelledWithProcess, false), (run.Cause, run.Charged));
        Assert.StartsWith("stop the import", run.Detail, StringComparison.Ordinal);
        var released = await JobAsync(sibling.JobId);
        Assert.Equal((JobState.Ready, 0, 0), (released.State, released.Attempts, released.WorkerLosses));
    }

    [Fact]
    public async Task A_job_whose_process_was_just_pruned_is_cancelled_at_once()
    {
        var admin = NewAdmin();
        var worker = await RegisterAsync();
        await InsertAsync(Plain());
        var claim = await ClaimOneAsync(worker);
        Assert.NotNull(await admin.PruneProcessAsync(worker));
        Assert.Equal(JobState.Ready, (await JobAsync(claim.JobId)).State);

        Assert.Equal(CancelResult.Cancelled, await admin.CancelAsync(claim.JobId, "after the prune"));

        Assert.Equal(JobState.Discarded, (await JobAsync(claim.JobId)).State);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task A_released_claim_whose_run_was_asked_to_stop_is_discarded_not_put_back()
    {
        var worker = await RegisterAsync();
        await InsertAsync(Plain(), Plain());
        var cancelled = await ClaimOneAsync(worker);
        var sibling = await ClaimOneAsync(worker);
        await NewAdmin().CancelAsync(cancelled.JobId, "stop it");

        await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(worker, null, null) { Reason = new RunEnding(RunOutcomes.Released, "stop", "its worker stopped") }, default);

        var discarded = await JobAsync(cancelled.JobId);
        Assert.Equal(JobState.Discarded, discarded.State);
        Assert.StartsWith("stop it", CancelledRun(discarded).Detail, StringComparison.Ordinal);
        Assert.Equal(JobState.Ready, (await JobAsync(sibling.JobId)).State);
    }

    [Fact]
    public async Task An_operator_release_of_a_claim_whose_run_was_asked_to_stop_discards_the_job()
    {
        var admin = NewAdmin();
        var worker = await RegisterAsync();
        await InsertAsync(Plain(), Plain());
        var cancelled = await ClaimOneAsync(worker);
        var sibling = await ClaimOneAsync(worker);
        await admin.CancelAsync(cancelled.JobId, "stop it");

        await admin.ReleaseClaimsAsync([cancelled.ClaimId, sibling.ClaimId]);

        var discarded = await JobAsync(cancelled.JobId);
        Assert.Equal(JobState.Discarded, discarded.State);
        Assert.StartsWith("stop it", CancelledRun(discarded).Detail, StringComparison.Ordinal);
        Assert.Equal(JobState.Ready, (await JobAsync(sibling.JobId)).State);
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions"));
    }

    [Fact]
    public async Task A_cancelled_run_gives_back_its_concurrency_permit_and_its_uniqueness_key()
    {
        var worker = await RegisterAsync();
        NewJob Limited(string unique) => new("test", "default", "{}", 0, 3, null) { ConcurrencyKey = "import", ConcurrencyLimit = 1, ConcurrencyDuration = TimeSpan.FromMinutes(5), UniqueKey = unique };
        var ids = await InsertAsync(Limited("a"), Limited("b"));
        Assert.Equal(JobState.Blocked, (await JobAsync(ids[1])).State);
        var claim = await ClaimOneAsync(worker);
        await NewAdmin().CancelAsync(claim.JobId);

        Assert.True(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(worker, claim.Ref, Honoured, null), default));

        await Eventually.WaitUntilAsync(async () => (await JobAsync(ids[1])).State == JobState.Ready, TimeSpan.FromSeconds(10), "the blocked job takes the permit the cancelled one gave back");
        var again = await InsertAsync(Limited("a"));
        Assert.NotEqual(ids[0], again[0]);
    }

    [Fact]
    public async Task A_cancel_to_resume_stops_only_a_running_job_and_its_release_keeps_the_checkpoint_uncounted()
    {
        var admin = NewAdmin();
        var worker = await RegisterAsync();
        var ids = await InsertAsync(Plain(), Plain());
        var running = await ClaimOneAsync(worker);
        var waiting = ids.Single(id => id != running.JobId);

        Assert.Equal(CancelResult.NotRunning, await admin.CancelAsync(waiting, new CancelOptions { Reason = "not yet", Resume = true }));
        Assert.Equal((JobState.Ready, 0), ((await JobAsync(waiting)).State, (await JobAsync(waiting)).Runs.Count));

        Assert.True(await Storage.JobCheckpointSaveAsync(new JobCheckpointSaveParams(worker, running.Ref, "{\"next\":300}"), default));
        Assert.Equal(CancelResult.Requested, await admin.CancelAsync(running.JobId, new CancelOptions { Reason = "deploying the importer", Resume = true }));
        Assert.Equal(CancelResult.AlreadyRequested, await admin.CancelAsync(running.JobId, "and discard it too"));
        var request = Assert.Single(await Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
        Assert.Equal((running.ClaimId, "deploying the importer", true), (request.ClaimId, request.Reason, request.Resume));
        Assert.Equal("deploying the importer", (await JobAsync(running.JobId)).CancelRequested);

        // What the worker writes once the run stopped: a release, not a discard.
        var ending = new RunEnding(RunOutcomes.Released, RunCauses.CancelResumed, "deploying the importer");
        Assert.Equal(1, await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(worker, [running.ClaimId], null) { Reason = ending }, default));

        var resumed = await JobAsync(running.JobId);
        Assert.Equal((JobState.Ready, 0, 0), (resumed.State, resumed.Attempts, resumed.WorkerLosses));
        var run = Assert.Single(resumed.Runs);
        Assert.Equal((RunOutcomes.Released, RunCauses.CancelResumed, false), (run.Outcome, run.Cause, run.Charged));
        var next = await ClaimOneAsync(worker);
        next = next.JobId == running.JobId ? next : await ClaimOneAsync(worker);
        Assert.Equal((running.JobId, "{\"next\":300}"), (next.JobId, next.Checkpoint));
        Assert.Empty(await Storage.ClaimsCancelRequestedAsync(new ClaimsCancelRequestedParams(worker), default));
    }

    [Fact]
    public async Task A_process_that_dies_with_a_run_cancelled_to_resume_sends_that_job_back_with_its_checkpoint()
    {
        var admin = NewAdmin();
        var worker = await RegisterAsync();
        await InsertAsync(Plain(), Plain());
        var resuming = await ClaimOneAsync(worker);
        var operatorReleased = await ClaimOneAsync(worker);
        Assert.True(await Storage.JobCheckpointSaveAsync(new JobCheckpointSaveParams(worker, resuming.Ref, "{\"next\":7}"), default));
        await admin.CancelAsync(resuming.JobId, new CancelOptions { Resume = true });
        await admin.CancelAsync(operatorReleased.JobId, new CancelOptions { Resume = true });

        // An operator's release of a run asked to stop to resume puts it back: nothing discards it.
        Assert.Equal(1, (await admin.ReleaseClaimsAsync([operatorReleased.ClaimId])).Released);
        Assert.Equal(JobState.Ready, (await JobAsync(operatorReleased.JobId)).State);

        var result = await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(worker, new WorkerLostCause("process-exited", "killed by signal 9"), null), default);

        Assert.Equal(0, result!.Cancelled);
        var back = await JobAsync(resuming.JobId);
        Assert.Equal((JobState.Ready, 1), (back.State, back.WorkerLosses)); // Recovered like any claim of a dead process (it ran alone: charged).
        Assert.DoesNotContain(back.Runs, r => r.Outcome == RunOutcomes.Cancelled);
        var suspect = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(await RegisterAsync(), QueueFilter.All, 1, null) { Suspects = true }, default)); // A suspect is claimed apart, to run alone.
        Assert.Equal((resuming.JobId, "{\"next\":7}"), (suspect.JobId, suspect.Checkpoint));
    }
}
