using Keel.Runtime;
using Keel.Storage;

namespace Keel.Tests.Unit;

/// <summary>The rules of workflows that need no database: edges, parents, cycles refused before anything is written, callbacks as stored.</summary>
public sealed class WorkflowRulesTests
{
    [Theory]
    [InlineData(ContinueWhen.Succeeded, UnmetPolicy.Discard, ContinueWhen.Succeeded, true)]
    [InlineData(ContinueWhen.Succeeded, UnmetPolicy.Discard, ContinueWhen.Failed, false)]
    [InlineData(ContinueWhen.Succeeded, UnmetPolicy.Run, ContinueWhen.Failed, true)]
    [InlineData(ContinueWhen.Failed, UnmetPolicy.Discard, ContinueWhen.Discarded, false)]
    [InlineData(ContinueWhen.Finished, UnmetPolicy.Discard, ContinueWhen.Discarded, true)]
    [InlineData(ContinueWhen.Succeeded | ContinueWhen.Discarded, UnmetPolicy.Discard, ContinueWhen.Discarded, true)]
    public void An_edge_proceeds_when_the_outcome_is_waited_for_or_its_policy_runs_anyway(ContinueWhen waitOn, UnmetPolicy onUnmet, ContinueWhen outcome, bool proceeds)
        => Assert.Equal(proceeds, WorkflowSteps.Proceeds(waitOn, onUnmet, outcome));

    [Fact]
    public void Parents_are_written_as_one_id_a_list_or_a_reference_to_an_earlier_job()
    {
        JobParents one = 42L;
        JobParents several = [1L, 2L, JobRef.Earlier(0)];
        Assert.Equal(42L, Assert.Single(one).Id);
        Assert.Equal([1L, 2L, null], several.Select(p => p.Id));
        Assert.Equal(0, several[2].Index);
        Assert.Throws<ArgumentOutOfRangeException>(() => JobRef.Earlier(-1));
    }

    [Fact]
    public void A_job_may_wait_only_on_jobs_before_it_so_no_cycle_can_be_written()
    {
        var forward = new EnqueueOptions { After = JobRef.Earlier(3) };
        var self = new EnqueueOptions { After = JobRef.Earlier(2) };
        var back = new EnqueueOptions { After = JobRef.Earlier(1) };

        Assert.Contains("before it", Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", forward, 2)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", self, 2));
        Assert.Equal(1, Assert.Single(KeelClient.Dependencies("k", back, 2)!).ParentIndex);
    }

    [Fact]
    public void Bad_continuation_options_are_refused_with_a_reason()
    {
        Assert.Contains("no parents", Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", new EnqueueOptions { After = JobParents.Of([]) }, 0)).Message, StringComparison.Ordinal);
        Assert.Contains("names no outcome", Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", new EnqueueOptions { After = 1L, When = 0 }, 0)).Message, StringComparison.Ordinal);
        Assert.Contains("OnUnmet", Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", new EnqueueOptions { After = 1L, OnUnmet = (UnmetPolicy)7 }, 0)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", new EnqueueOptions { After = 0L }, 0));
        Assert.Contains("cannot be unique", Assert.Throws<ArgumentException>(() => KeelClient.Dependencies("k", new EnqueueOptions { After = 1L, UniqueKey = "u" }, 0)).Message, StringComparison.Ordinal);
        Assert.Null(KeelClient.Dependencies("k", new EnqueueOptions(), 0));
    }

    [Fact]
    public void A_callback_job_survives_being_stored()
    {
        var job = new NewJob("zip", "files", """{"album":42}""", 3, 5, null, 1) { ConcurrencyKey = "zip/42", ConcurrencyLimit = 2, ConcurrencyDuration = TimeSpan.FromMinutes(3), UniqueKey = "zip/u", TraceParent = "00-abc-def-01" };

        Assert.Equal(job, WorkflowSteps.CallbackFromJson(WorkflowSteps.CallbackJson(job)));
        Assert.Equal(BatchEvent.Failure, WorkflowSteps.ParseEvent(WorkflowSteps.EventName(BatchEvent.Failure)));
    }

    [Fact]
    public void A_batch_is_pending_until_it_completes_then_succeeded_or_failed()
    {
        var pending = new BatchInfo { Id = 1, Total = 2, Pending = 1, Succeeded = 1, Failed = 0, Discarded = 0, CreatedAt = DateTimeOffset.UnixEpoch };
        Assert.Equal(BatchState.Pending, pending.State);
        Assert.Equal(BatchState.Succeeded, (pending with { Pending = 0, Succeeded = 2, CompletedAt = DateTimeOffset.UnixEpoch }).State);
        var failed = pending with { Pending = 0, Failed = 1, CompletedAt = DateTimeOffset.UnixEpoch };
        Assert.Equal(BatchState.Failed, failed.State);
        Assert.Equal(BatchState.Succeeded, (failed with { Failed = 0, Succeeded = 2, SucceededAt = DateTimeOffset.UnixEpoch }).State);
    }

    [Fact]
    public void A_callback_cannot_wait_on_other_jobs_and_added_jobs_are_referenced_by_position()
    {
        var builder = (BatchBuilder)Activator.CreateInstance(typeof(BatchBuilder), nonPublic: true)!;
        Assert.Throws<ArgumentException>(() => builder.OnComplete<EndToEnd.CountingJob, EndToEnd.CountArgs>(new(1), new EnqueueOptions { After = 1L }));
        Assert.Equal(JobRef.Earlier(0), builder.Add<EndToEnd.CountingJob, EndToEnd.CountArgs>(new(1)));
        Assert.Equal(JobRef.Earlier(1), builder.Add<EndToEnd.CountingJob, EndToEnd.CountArgs>(new(2)));
    }
}
