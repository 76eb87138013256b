using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Tests.EndToEnd;

/// <summary>Continuations and batches through the public client, run by real workers, on every engine.</summary>
public abstract class WorkflowEndToEnd : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    protected abstract Engine Engine { get; }

    protected TestDatabase Db { get; private set; } = null!;

    public async Task InitializeAsync() => Db = await TestDatabase.CreateAsync(Engine);

    public async Task DisposeAsync() => await Db.DisposeAsync();

    private static IKeelClient Client(IHost host) => host.Services.GetRequiredService<IKeelClient>();

    [Fact]
    public async Task A_chain_runs_in_order_and_a_batch_callback_runs_once_after_every_job_including_those_added_from_inside()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(KeelHost.Worker(4)));
        var keel = Client(host);
        var a = await keel.EnqueueAsync<CountingJob, CountArgs>(new(1, "a"));
        var b = await keel.After(a).EnqueueAsync<CountingJob, CountArgs>(new(2, "b"));
        await keel.EnqueueAsync<CountingJob, CountArgs>(new(3, "c"), new EnqueueOptions { After = b });
        var batch = await keel.StartBatchAsync(builder =>
        {
            builder.Description = "twenty and five more";
            for (var i = 0; i < 20; i++)
            {
                builder.Add<CountingJob, CountArgs>(new(i, "batch"));
            }

            builder.Add<AddsToBatchJob, CountArgs>(new(5));
            builder.OnComplete<CountingJob, CountArgs>(new(0, "callback"));
            builder.OnSuccess<CountingJob, CountArgs>(new(0, "success"));
        });
        Assert.Equal(BatchState.Pending, (await keel.GetBatchAsync(batch))!.State);
        await host.StartAsync();

        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Order.Contains("success") && recorder.Order.Contains("callback") && recorder.Order.Contains("c")), Patience, "the chain and the batch's callbacks ran");
        await host.StopAsync();

        var order = recorder.Order.ToList();
        Assert.True(order.IndexOf("a") < order.IndexOf("b") && order.IndexOf("b") < order.IndexOf("c"), string.Join(",", order));
        Assert.Equal(1, order.Count(l => l == "callback"));
        Assert.Equal(25, order.Count(l => l is "batch" or "added"));
        Assert.True(order.LastIndexOf("batch") < order.IndexOf("callback") && order.LastIndexOf("added") < order.IndexOf("callback"), string.Join(",", order));
        var read = (await keel.GetBatchAsync(batch))!;
        Assert.Equal((26L, 0L, 26L, BatchState.Succeeded, "twenty and five more"), (read.Total, read.Pending, read.Succeeded, read.State, read.Description));
        Assert.All(read.Callbacks, c => Assert.NotNull(c.JobId));
        Assert.Equal(26, recorder.Contexts.Count(c => c.BatchId == batch));
    }

    [Fact]
    public async Task A_continuation_on_failure_runs_and_one_on_success_is_discarded()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder, o => o.Workers.Add(KeelHost.Worker(2)));
        var keel = Client(host);
        var parent = await keel.EnqueueAsync<DiscardingJob, CountArgs>(new(1));
        var onFailure = await keel.After(parent).When(ContinueWhen.Failed).EnqueueAsync<CountingJob, CountArgs>(new(2, "on-failure"));
        var onSuccess = await keel.After(parent).EnqueueAsync<CountingJob, CountArgs>(new(3, "on-success"));
        var anyway = await keel.After([parent]).RunAnyway().EnqueueAsync<CountingJob, CountArgs>(new(4, "anyway"));
        Assert.Equal(JobState.Awaiting, (await keel.GetJobAsync(onSuccess))!.State);
        await host.StartAsync();

        await Eventually.WaitUntilAsync(() => Task.FromResult(recorder.Order.Contains("on-failure") && recorder.Order.Contains("anyway")), Patience, "the continuations ran");
        await host.StopAsync();

        Assert.Equal(JobState.Discarded, (await keel.GetJobAsync(onSuccess))!.State);
        Assert.DoesNotContain("on-success", recorder.Order);
        var child = (await keel.GetJobAsync(onFailure))!;
        Assert.Equal((parent, ContinueWhen.Failed), (Assert.Single(child.Parents).ParentId, Assert.Single(child.Parents).Outcome!.Value));
        Assert.Equal([onFailure, onSuccess, anyway], (await keel.GetJobAsync(parent))!.Children.Select(c => c.ChildId));
    }

    [Fact]
    public async Task A_bulk_enqueue_may_name_earlier_jobs_of_the_same_call_but_never_later_ones()
    {
        var recorder = new Recorder();
        using var host = KeelHost.Build(Db, recorder);
        var keel = Client(host);
        var before = await Db.ScalarAsync("SELECT count(*) FROM keel_jobs");

        await Assert.ThrowsAsync<ArgumentException>(() => keel.EnqueueManyAsync(
        [
            JobRequest.Create<CountingJob, CountArgs>(new(1), new EnqueueOptions { After = JobRef.Earlier(1) }),
            JobRequest.Create<CountingJob, CountArgs>(new(2), new EnqueueOptions { After = JobRef.Earlier(0) }),
        ]));
        Assert.Equal(before, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));

        var ids = await keel.EnqueueManyAsync(
        [
            JobRequest.Create<CountingJob, CountArgs>(new(1)),
            JobRequest.Create<CountingJob, CountArgs>(new(2), new EnqueueOptions { After = JobRef.Earlier(0) }),
        ]);
        Assert.Equal(ids[0], Assert.Single((await keel.GetJobAsync(ids[1]))!.Parents).ParentId);
    }
}

/// <summary>A job inside a batch that adds more jobs to its own batch.</summary>
[Job("adds-to-batch")]
public sealed class AddsToBatchJob(Recorder recorder, IKeelClient keel) : IJob<CountArgs>
{
    public async Task PerformAsync(CountArgs args, JobContext context, CancellationToken cancellationToken)
    {
        recorder.Enter(context);
        var batch = context.BatchId ?? throw new InvalidOperationException("not in a batch");
        await keel.AddToBatchAsync(batch, [.. Enumerable.Range(0, args.N).Select(i => JobRequest.Create<CountingJob, CountArgs>(new CountArgs(i, "added")))], cancellationToken);
        recorder.Leave();
    }
}

public sealed class SqliteWorkflowEndToEnd : WorkflowEndToEnd
{
    protected override Engine Engine => Engine.Sqlite;
}

public sealed class PostgreSqlWorkflowEndToEnd : WorkflowEndToEnd
{
    protected override Engine Engine => Engine.PostgreSql;
}

public sealed class MySqlWorkflowEndToEnd : WorkflowEndToEnd
{
    protected override Engine Engine => Engine.MySql;
}
