using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Testing.Tests;

public sealed class CrashInjectionTests
{
    private readonly Ledger _ledger = new();

    private Task<KeelTestHost> StartAsync()
        => KeelTestHost.StartAsync(
            k => k
                .AddJob<CountJob>(o => o.OnWorkerLost = WorkerLostPolicy.Retry)
                .AddJob<FragileCountJob>(o => o.OnWorkerLost = WorkerLostPolicy.Fail),
            services => services.AddSingleton(_ledger));

    [Fact]
    public async Task Death_after_the_job_ran_retries_it_under_the_retry_policy_so_it_runs_twice()
    {
        await using var keel = await StartAsync();
        var id = await keel.Client.EnqueueAsync<CountJob, WorkArgs>(new("effect"));

        var crash = await keel.CrashWorkerAsync(CrashPoint.AfterPerform);

        Assert.Equal(id, crash.JobId);
        Assert.Equal(1, _ledger.Count("effect"));
        Assert.Equal(1, crash.Recovery.Retried);
        Assert.Equal(JobState.Ready, crash.Job.State);
        Assert.Equal(1, crash.Job.Attempts);
        Assert.Equal(1, crash.Job.WorkerLosses);

        await keel.RunUntilIdleAsync();

        // The side effect happened twice: a job that must not repeat it needs to check first (what this test is for).
        Assert.Equal(2, _ledger.Count("effect"));
        var job = await keel.AssertPerformedAsync<CountJob, WorkArgs>();
        Assert.Contains(job.Runs, r => r.Outcome == RunOutcomes.Lost);
    }

    [Fact]
    public async Task Death_before_the_job_ran_retries_it_without_it_having_run()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<CountJob, WorkArgs>(new("untouched"));

        var crash = await keel.CrashWorkerAsync(CrashPoint.BeforePerform);

        Assert.Equal(0, _ledger.Count("untouched"));
        Assert.Equal(JobState.Ready, crash.Job.State);
        Assert.Equal(1, crash.Job.WorkerLosses);
        await keel.RunUntilIdleAsync();
        Assert.Equal(1, _ledger.Count("untouched"));
    }

    [Fact]
    public async Task Death_fails_the_job_under_the_fail_policy()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<FragileCountJob, WorkArgs>(new("fragile"));

        var crash = await keel.CrashWorkerAsync(CrashPoint.AfterPerform);

        Assert.Equal(1, crash.Recovery.Failed);
        Assert.Equal(JobState.Failed, crash.Job.State);
        Assert.Equal(WorkerLostCause.ExceptionType, crash.Job.Errors[^1].ExceptionType);
        Assert.Contains("crash injection", crash.Job.Errors[^1].Message, StringComparison.Ordinal);
        await keel.RunUntilIdleAsync();
        Assert.Equal(1, _ledger.Count("fragile"));
        await keel.AssertFailedAsync<FragileCountJob, WorkArgs>();
    }

    [Fact]
    public async Task Deaths_beyond_the_jobs_worker_losses_fail_it_under_the_retry_policy()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<CountJob, WorkArgs>(new("unlucky"));

        // MaxWorkerLosses defaults to 2: the third loss fails it.
        var crashes = new List<CrashResult>();
        for (var i = 0; i < 3; i++)
        {
            crashes.Add(await keel.CrashWorkerAsync(CrashPoint.BeforePerform));
        }

        Assert.Equal([JobState.Ready, JobState.Ready, JobState.Failed], crashes.Select(c => c.Job.State));
        await keel.AssertFailedAsync<CountJob, WorkArgs>(a => a.Key == "unlucky");
    }

    [Fact]
    public async Task Crash_with_no_ready_job_says_so()
    {
        await using var keel = await StartAsync();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => keel.CrashWorkerAsync(CrashPoint.AfterPerform));

        Assert.Contains("no ready job", error.Message, StringComparison.Ordinal);
    }
}
