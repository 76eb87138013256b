namespace Keel.Storage.Conformance;

/// <summary>
/// Checkpoints and progress (docs/running-jobs.md): a running job's state saved with the job under its claim, refused
/// once the claim is lost, read by the claim of its next attempt whatever ended the last one, and cleared when the job
/// finishes or fails for good; its progress written on its claim, fenced the same way, read by the claims list and the
/// job — on every engine.
/// </summary>
public abstract class CheckpointConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private async Task<long> RegisterAsync()
        => await Storage.ProcessRegisterAsync(new ProcessRegisterParams("worker-" + Guid.NewGuid().ToString("N")[..10], "Worker", 4242, "elsewhere", DateTimeOffset.UtcNow.AddHours(-1), null, "{}", null), default);

    private async Task<long> InsertAsync() => (await Storage.JobsInsertAsync(new JobsInsertParams([new NewJob("test", "default", "{}", 0, 5, null)], null), default))[0];

    private async Task<ClaimedJob> ClaimOneAsync(long processId)
        => Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(processId, QueueFilter.All, 1, null), default));

    private Task<bool> SaveAsync(long processId, ClaimedJob claim, string json)
        => Storage.JobCheckpointSaveAsync(new JobCheckpointSaveParams(processId, claim.Ref, json), default);

    private Task<long> CheckpointsAsync() => Db.ScalarAsync("SELECT count(*) FROM keel_jobs WHERE checkpoint IS NOT NULL");

    [Fact]
    public async Task A_checkpoint_saved_under_the_claim_is_read_by_the_next_claim_after_a_release()
    {
        var worker = await RegisterAsync();
        var id = await InsertAsync();
        var first = await ClaimOneAsync(worker);
        Assert.Null(first.Checkpoint);

        Assert.True(await SaveAsync(worker, first, "{\"next\":100}"));
        Assert.True(await SaveAsync(worker, first, "{\"next\":200}"));
        await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(worker, null, null), default);

        var second = await ClaimOneAsync(worker);
        Assert.Equal((id, "{\"next\":200}"), (second.JobId, second.Checkpoint));
    }

    [Fact]
    public async Task A_checkpoint_survives_the_death_of_its_process_and_a_failed_attempt()
    {
        var dead = await RegisterAsync();
        await InsertAsync();
        var first = await ClaimOneAsync(dead);
        Assert.True(await SaveAsync(dead, first, "{\"next\":300}"));
        Assert.NotNull(await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(dead, new WorkerLostCause("process-exited", "killed by signal 9"), null), default));

        var worker = await RegisterAsync();
        var second = Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(worker, QueueFilter.All, 1, null) { Suspects = true }, default)); // it died alone: a suspect now
        Assert.Equal("{\"next\":300}", second.Checkpoint);
        Assert.True(await SaveAsync(worker, second, "{\"next\":400}"));
        Assert.True(await Storage.JobFailAsync(new JobFailParams(worker, second.Ref, new FailureRecord("System.IO.IOException", "disk", null), DateTimeOffset.UtcNow.AddSeconds(-1), null), default));

        Assert.Equal("{\"next\":400}", (await ClaimOneAsync(worker)).Checkpoint);
    }

    [Fact]
    public async Task A_run_that_lost_its_claim_cannot_save_a_checkpoint()
    {
        var worker = await RegisterAsync();
        var stranger = await RegisterAsync();
        await InsertAsync();
        var first = await ClaimOneAsync(worker);
        Assert.True(await SaveAsync(worker, first, "{\"next\":100}"));

        Assert.False(await SaveAsync(stranger, first, "{\"next\":999}"));
        await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(worker, null, null), default);
        Assert.False(await SaveAsync(worker, first, "{\"next\":999}")); // its claim went back

        var second = await ClaimOneAsync(stranger);
        Assert.Equal("{\"next\":100}", second.Checkpoint);
        Assert.False(await SaveAsync(worker, second, "{\"next\":999}")); // the new claim is not its own
    }

    [Fact]
    public async Task A_checkpoint_is_cleared_when_the_job_finishes_or_fails_for_good()
    {
        var worker = await RegisterAsync();
        await InsertAsync();
        await InsertAsync();
        var finishing = await ClaimOneAsync(worker);
        var failing = await ClaimOneAsync(worker);
        Assert.True(await SaveAsync(worker, finishing, "{\"next\":1}"));
        Assert.True(await SaveAsync(worker, failing, "{\"next\":2}"));
        Assert.Equal(2, await CheckpointsAsync());

        Assert.Equal([finishing.ClaimId], await Storage.JobsCompleteAsync(new JobsCompleteParams(worker, [finishing.Ref], null, true), default));
        Assert.Equal(1, await CheckpointsAsync());
        Assert.True(await Storage.JobFailAsync(new JobFailParams(worker, failing.Ref, new FailureRecord("System.IO.IOException", "disk", null), null, null), default));
        Assert.Equal(0, await CheckpointsAsync());
    }

    [Fact]
    public async Task Progress_is_written_on_the_claim_read_with_the_job_and_the_claims_and_gone_with_the_claim()
    {
        var worker = await RegisterAsync();
        var stranger = await RegisterAsync();
        var id = await InsertAsync();
        var claim = await ClaimOneAsync(worker);
        Assert.Null((await Storage.JobGetAsync(id, default))!.Progress);

        Assert.True(await Storage.JobProgressReportAsync(new JobProgressParams(worker, claim.Ref, 0.25, "250 of 1000 rows", null), default));
        Assert.True(await Storage.JobProgressReportAsync(new JobProgressParams(worker, claim.Ref, 0.5, null, null), default));
        Assert.False(await Storage.JobProgressReportAsync(new JobProgressParams(stranger, claim.Ref, 0.9, "not mine", null), default));

        var job = (await Storage.JobGetAsync(id, default))!;
        Assert.Equal((0.5, (string?)null), (job.Progress, job.ProgressMessage));
        var listed = Assert.Single(await Storage.ClaimsListAsync(new ClaimsListParams(null, null, 10, null), default));
        Assert.Equal(0.5, listed.Progress);
        Assert.True(await Storage.JobProgressReportAsync(new JobProgressParams(worker, claim.Ref, 0.75, "750 of 1000 rows", null), default));
        Assert.Equal("750 of 1000 rows", Assert.Single(await Storage.ClaimsListAsync(new ClaimsListParams(null, null, 10, null), default)).ProgressMessage);

        await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(worker, null, null), default);
        Assert.False(await Storage.JobProgressReportAsync(new JobProgressParams(worker, claim.Ref, 1, null, null), default));
        Assert.Null((await Storage.JobGetAsync(id, default))!.Progress);
    }

    [Fact]
    public async Task Log_lines_and_a_result_are_written_under_the_claim_kept_per_attempt_and_read_with_the_job()
    {
        var worker = await RegisterAsync();
        var stranger = await RegisterAsync();
        var id = await InsertAsync();
        var first = await ClaimOneAsync(worker);
        var t0 = DateTimeOffset.UtcNow;
        JobLogLine Line(int attempt, int second, string message) => new(attempt, t0.AddSeconds(second), "Information", message);

        Assert.True(await Storage.JobLogsAppendAsync(new JobLogsAppendParams(worker, first.Ref, [Line(1, 0, "starting"), Line(1, 1, "row 1 bad: skipped")]), default));
        Assert.False(await Storage.JobLogsAppendAsync(new JobLogsAppendParams(stranger, first.Ref, [Line(1, 2, "not mine")]), default));
        Assert.True(await Storage.JobFailAsync(new JobFailParams(worker, first.Ref, new FailureRecord("System.IO.IOException", "disk", null), DateTimeOffset.UtcNow.AddSeconds(-1), null), default));
        Assert.False(await Storage.JobLogsAppendAsync(new JobLogsAppendParams(worker, first.Ref, [Line(1, 3, "too late")]), default));

        var second = await ClaimOneAsync(worker);
        Assert.True(await Storage.JobLogsAppendAsync(new JobLogsAppendParams(worker, second.Ref, [Line(2, 4, "again")]), default));
        Assert.False(await Storage.JobResultSaveAsync(new JobResultSaveParams(stranger, second.Ref, "{\"rows\":1}"), default));
        Assert.True(await Storage.JobResultSaveAsync(new JobResultSaveParams(worker, second.Ref, "{\"rows\":999}"), default));
        Assert.Equal([second.ClaimId], await Storage.JobsCompleteAsync(new JobsCompleteParams(worker, [second.Ref], null, true), default));

        var job = (await Storage.JobGetAsync(id, default))!;
        Assert.Equal([(1, "starting"), (1, "row 1 bad: skipped"), (2, "again")], job.Logs.Select(l => (l.Attempt, l.Message)));
        Assert.Equal("Information", job.Logs[0].Level);
        Assert.True(Math.Abs((job.Logs[1].At - t0.AddSeconds(1)).TotalMilliseconds) < 1, "the time is kept to the millisecond");
        Assert.Equal("{\"rows\":999}", job.Result);
        Assert.Equal(999, job.GetResult<System.Text.Json.JsonElement>().GetProperty("rows").GetInt32());
    }
}
