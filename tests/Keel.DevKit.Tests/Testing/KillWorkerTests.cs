using Microsoft.Extensions.DependencyInjection;

namespace Keel.Testing.Tests;

public sealed class KillWorkerTests
{
    private readonly Ledger _ledger = new();
    private readonly FakeGateway _gateway = new();

    private Task<KeelTestHost> StartAsync(WorkerLostPolicy policy, KeelTestOptions? options = null)
        => KeelTestHost.StartAsync(
            k => k.AddJob<PayJob>(o => o.OnWorkerLost = policy),
            services => services.AddSingleton(_ledger).AddSingleton(_gateway),
            options);

    [Fact]
    public async Task A_worker_killed_right_after_the_charge_reruns_the_job_in_the_same_drain()
    {
        await using var keel = await StartAsync(WorkerLostPolicy.Retry);
        _gateway.AfterNextCharge = keel.KillWorker;
        await keel.Client.EnqueueAsync<PayJob, WorkArgs>(new("order-1"));

        var drain = await keel.RunUntilIdleAsync();

        Assert.Equal([KeelTestRunResult.Crashed, KeelTestRunResult.Succeeded], drain.Runs.Select(r => r.Result));
        // The code after the charge ran once (the killed run stopped at the charge); the charge itself twice.
        Assert.Equal(1, _ledger.Count("after-charge:order-1"));
        Assert.Equal(2, _gateway.Charges);
        var job = await keel.AssertPerformedAsync<PayJob, WorkArgs>();
        Assert.Equal(1, job.WorkerLosses);
        Assert.Contains("KillWorker", job.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_worker_killed_under_the_fail_policy_fails_the_job()
    {
        await using var keel = await StartAsync(WorkerLostPolicy.Fail);
        _gateway.AfterNextCharge = keel.KillWorker;
        await keel.Client.EnqueueAsync<PayJob, WorkArgs>(new("order-2"));

        var drain = await keel.RunUntilIdleAsync();

        Assert.Equal([KeelTestRunResult.Crashed], drain.Runs.Select(r => r.Result));
        Assert.Equal(0, _ledger.Count("after-charge:order-2"));
        var job = await keel.AssertFailedAsync<PayJob, WorkArgs>();
        Assert.Equal("Keel.WorkerLostException", job.Errors[^1].ExceptionType);
    }

    [Fact]
    public async Task The_drain_goes_on_with_a_new_worker_after_a_kill()
    {
        await using var keel = await StartAsync(WorkerLostPolicy.Retry);
        _gateway.AfterNextCharge = keel.KillWorker;
        await keel.Client.EnqueueAsync<PayJob, WorkArgs>(new("a"));
        await keel.Client.EnqueueAsync<PayJob, WorkArgs>(new("b"));

        await keel.RunUntilIdleAsync();

        Assert.Equal(1, _ledger.Count("after-charge:a"));
        Assert.Equal(1, _ledger.Count("after-charge:b"));
        Assert.Equal(2, (await keel.JobsAsync<PayJob>(JobState.Finished)).Count);
    }

    [Fact]
    public async Task KillWorker_in_inline_mode_crashes_the_inline_run()
    {
        await using var keel = await StartAsync(WorkerLostPolicy.Retry, new KeelTestOptions { Inline = true });
        _gateway.AfterNextCharge = keel.KillWorker;

        await keel.Client.EnqueueAsync<PayJob, WorkArgs>(new("inline"));

        Assert.Equal(2, _gateway.Charges);
        Assert.Equal(1, _ledger.Count("after-charge:inline"));
        Assert.Contains(keel.Runs, r => r.Result == KeelTestRunResult.Crashed);
    }

    [Fact]
    public async Task KillWorker_outside_a_job_says_where_it_belongs()
    {
        await using var keel = await StartAsync(WorkerLostPolicy.Retry);

        var error = Assert.Throws<InvalidOperationException>(keel.KillWorker);

        Assert.Contains("from the code of a job", error.Message, StringComparison.Ordinal);
    }
}
