using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Keel.Storage.Conformance;

/// <summary>
/// Workflows on every engine (docs/workflows.md): continuations and dependencies through every transition of the
/// awaiting state, batches with their counters and callbacks, each step in the transaction of the outcome that causes
/// it — so a fenced-out late result advances nothing and a callback is enqueued exactly once.
/// </summary>
public abstract class WorkflowConformance : ConformanceTests
{
#pragma warning disable CS1591 // The test methods: each one's name says what it proves.
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static NewJob Job(string queue, DateTimeOffset? at = null) => new("test", queue, "{}", 0, 3, at);

    private static NewJob After(string queue, ContinueWhen when, UnmetPolicy onUnmet, params long[] parents)
        => Job(queue) with { Dependencies = [.. parents.Select(p => new NewDependency(p, null, when, onUnmet))] };

    private static NewJob After(string queue, params long[] parents) => After(queue, ContinueWhen.Succeeded, UnmetPolicy.Discard, parents);

    private static NewBatchCallback Callback(BatchEvent on) => new(on, new NewJob("callback-" + on.ToString().ToLowerInvariant(), "callbacks", "{}", 0, 3, null));

    private async Task<long> InsertAsync(NewJob job) => (await Storage.JobsInsertAsync(new JobsInsertParams([job], T0), default))[0];

    private async Task<long> RegisterAsync() => await Storage.ProcessRegisterAsync(new ProcessRegisterParams("w-" + Guid.NewGuid().ToString("N")[..8], "Worker", 1, "elsewhere", T0, null, "{}", T0), default);

    private async Task<JobState> StateAsync(long id) => (await Storage.JobGetAsync(id, default))!.State;

    private async Task<JobState[]> StatesAsync(params long[] ids)
    {
        var states = new JobState[ids.Length];
        for (var i = 0; i < ids.Length; i++)
        {
            states[i] = await StateAsync(ids[i]);
        }

        return states;
    }

    private async Task<ClaimedJob> ClaimAsync(long process, string queue)
        => Assert.Single(await Storage.JobsClaimAsync(new JobsClaimParams(process, new QueueFilter(QueueMatch.Exact, queue), 1, T0), default));

    private async Task SucceedAsync(long process, string queue, bool preserve = true)
    {
        var claim = await ClaimAsync(process, queue);
        Assert.Single(await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claim.Ref], T0, preserve), default));
    }

    private async Task FailForGoodAsync(long process, string queue)
    {
        var claim = await ClaimAsync(process, queue);
        Assert.True(await Storage.JobFailAsync(new JobFailParams(process, claim.Ref, new FailureRecord("System.InvalidOperationException", "broken", null), null, T0), default));
    }

    private async Task<long> CallbackJobsAsync(BatchEvent on)
        => await Db.ScalarAsync($"SELECT count(*) FROM keel_jobs WHERE kind = 'callback-{on.ToString().ToLowerInvariant()}'");

    [Fact]
    public async Task A_continuation_awaits_its_parent_and_becomes_ready_when_it_succeeds()
    {
        var parent = await InsertAsync(Job("p"));
        var child = await InsertAsync(After("c", parent));
        Assert.Equal(JobState.Awaiting, await StateAsync(child));
        var process = await RegisterAsync();
        Assert.Empty(await Storage.JobsClaimAsync(new JobsClaimParams(process, new QueueFilter(QueueMatch.Exact, "c"), 10, T0), default));

        await SucceedAsync(process, "p");

        Assert.Equal(JobState.Ready, await StateAsync(child));
        var read = (await Storage.JobGetAsync(child, default))!;
        Assert.Equal(new JobDependencyInfo(parent, child, ContinueWhen.Succeeded, UnmetPolicy.Discard, ContinueWhen.Succeeded), Assert.Single(read.Parents));
        Assert.Equal(child, Assert.Single((await Storage.JobGetAsync(parent, default))!.Children).ChildId);
        Assert.Equal(1, (await Storage.JobsCountAsync(new JobsCountParams(100), default)).Of(JobState.Ready));
    }

    [Fact]
    public async Task An_unmet_edge_discards_the_child_and_the_discard_cascades_down_a_chain()
    {
        var a = await InsertAsync(Job("a"));
        var b = await InsertAsync(After("b", a));
        var c = await InsertAsync(After("c", b));
        var onDiscard = await InsertAsync(After("d", ContinueWhen.Discarded, UnmetPolicy.Discard, c));
        var process = await RegisterAsync();

        await FailForGoodAsync(process, "a");

        Assert.Equal([JobState.Failed, JobState.Discarded, JobState.Discarded, JobState.Ready], await StatesAsync(a, b, c, onDiscard));
        Assert.Equal(ContinueWhen.Discarded, Assert.Single((await Storage.JobGetAsync(onDiscard, default))!.Parents).Outcome);
    }

    [Fact]
    public async Task A_continuation_that_runs_anyway_becomes_ready_after_its_parent_fails()
    {
        var parent = await InsertAsync(Job("p"));
        var anyway = await InsertAsync(After("c", ContinueWhen.Succeeded, UnmetPolicy.Run, parent));
        var onFailure = await InsertAsync(After("f", ContinueWhen.Failed, UnmetPolicy.Discard, parent));
        var onSuccess = await InsertAsync(After("s", parent));

        await FailForGoodAsync(await RegisterAsync(), "p");

        Assert.Equal([JobState.Ready, JobState.Ready, JobState.Discarded], await StatesAsync(anyway, onFailure, onSuccess));
    }

    [Fact]
    public async Task A_job_with_several_parents_waits_until_every_one_has_settled()
    {
        var a = await InsertAsync(Job("a"));
        var b = await InsertAsync(Job("b"));
        var c = await InsertAsync(Job("c"));
        var join = await InsertAsync(After("j", ContinueWhen.Finished, UnmetPolicy.Discard, a, b, c));
        var process = await RegisterAsync();

        await SucceedAsync(process, "a");
        await FailForGoodAsync(process, "b");
        Assert.Equal(JobState.Awaiting, await StateAsync(join));
        Assert.Equal(1, await Db.ScalarAsync($"SELECT waiting FROM keel_awaiting_executions WHERE job_id = {join}"));
        Assert.Equal(1, await Storage.JobsDiscardAsync(new JobsSelectionParams([c], null, null, 10, T0), default));

        Assert.Equal(JobState.Ready, await StateAsync(join));
        Assert.Equal([ContinueWhen.Succeeded, ContinueWhen.Failed, ContinueWhen.Discarded], (await Storage.JobGetAsync(join, default))!.Parents.Select(p => p.Outcome!.Value));
    }

    [Fact]
    public async Task Continuations_enqueued_while_their_parent_completes_are_never_left_waiting()
    {
        // Each continuation either sees the parent still running (and its edge is settled by the completion) or sees it
        // finished (and settles its edge at insert): the parent's row is the meeting point, whatever the interleaving.
        var process = await RegisterAsync();
        var parents = new List<(long Id, ClaimedJob Claim)>();
        for (var i = 0; i < 5; i++)
        {
            var id = await InsertAsync(Job("race-" + i));
            parents.Add((id, await ClaimAsync(process, "race-" + i)));
        }

        var children = new System.Collections.Concurrent.ConcurrentBag<long>();
        var other = Db.NewStorage();
        var enqueue = Task.Run(async () =>
        {
            for (var round = 0; round < 10; round++)
            {
                foreach (var (id, _) in parents)
                {
                    children.Add((await other.JobsInsertAsync(new JobsInsertParams([After("kids", id)], T0), default))[0]);
                }
            }
        });
        var complete = Task.Run(async () =>
        {
            foreach (var (_, claim) in parents)
            {
                await Task.Delay(2);
                await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claim.Ref], T0, true), default);
            }
        });
        await Task.WhenAll(enqueue, complete);

        Assert.Equal(50, children.Count);
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_awaiting_executions"));
        Assert.Equal(50, await Db.ScalarAsync("SELECT count(*) FROM keel_ready_executions WHERE queue = 'kids'"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_dependencies WHERE outcome IS NULL"));
    }

    [Fact]
    public async Task A_parent_already_final_settles_the_edge_at_insert()
    {
        var process = await RegisterAsync();
        var done = await InsertAsync(Job("done"));
        await SucceedAsync(process, "done");
        var failed = await InsertAsync(Job("failed"));
        await FailForGoodAsync(process, "failed");

        var afterDone = await InsertAsync(After("x", done));
        var afterFailed = await InsertAsync(After("y", failed));
        var afterBoth = await InsertAsync(After("z", ContinueWhen.Finished, UnmetPolicy.Discard, done, failed));

        Assert.Equal([JobState.Ready, JobState.Discarded, JobState.Ready], await StatesAsync(afterDone, afterFailed, afterBoth));
    }

    [Fact]
    public async Task Parents_that_do_not_exist_or_do_not_come_first_are_refused_and_nothing_is_written()
    {
        var parent = await InsertAsync(Job("p"));
        var before = await Db.ScalarAsync("SELECT count(*) FROM keel_jobs");

        await Assert.ThrowsAsync<ArgumentException>(() => InsertAsync(After("c", parent + 1000)));

        // A cycle would need a job to wait on itself or on a later job of the same insert: refused whole.
        var selfCycle = Job("c") with { Dependencies = [new NewDependency(null, 0, ContinueWhen.Succeeded, UnmetPolicy.Discard)] };
        var forward = Job("c") with { Dependencies = [new NewDependency(null, 1, ContinueWhen.Succeeded, UnmetPolicy.Discard)] };
        var back = Job("c") with { Dependencies = [new NewDependency(null, 0, ContinueWhen.Succeeded, UnmetPolicy.Discard)] };
        await Assert.ThrowsAsync<ArgumentException>(() => Storage.JobsInsertAsync(new JobsInsertParams([selfCycle], T0), default));
        await Assert.ThrowsAsync<ArgumentException>(() => Storage.JobsInsertAsync(new JobsInsertParams([forward, back], T0), default));

        Assert.Equal(before, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_dependencies"));
    }

    [Fact]
    public async Task A_job_may_wait_on_an_earlier_job_of_the_same_insert()
    {
        var ids = await Storage.JobsInsertAsync(
            new JobsInsertParams([Job("a"), Job("b") with { Dependencies = [new NewDependency(null, 0, ContinueWhen.Succeeded, UnmetPolicy.Discard)] }], T0),
            default);
        Assert.Equal([JobState.Ready, JobState.Awaiting], await StatesAsync(ids[0], ids[1]));

        await SucceedAsync(await RegisterAsync(), "a");

        Assert.Equal(JobState.Ready, await StateAsync(ids[1]));
    }

    [Fact]
    public async Task A_late_result_of_a_lost_claim_advances_nothing()
    {
        var parent = await InsertAsync(Job("p"));
        var child = await InsertAsync(After("c", parent));
        var zombie = await RegisterAsync();
        var lost = await ClaimAsync(zombie, "p");
        await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([lost.ClaimId], ClaimAction.Release, new WorkerLostCause("operator", "released"), T0), default);

        Assert.Empty(await Storage.JobsCompleteAsync(new JobsCompleteParams(zombie, [lost.Ref], T0, true), default));
        Assert.False(await Storage.JobFailAsync(new JobFailParams(zombie, lost.Ref, new FailureRecord("X", "late", null), null, T0), default));

        Assert.Equal([JobState.Ready, JobState.Awaiting], await StatesAsync(parent, child));
        await SucceedAsync(await RegisterAsync(), "p");
        Assert.Equal(JobState.Ready, await StateAsync(child));
    }

    [Fact]
    public async Task A_child_whose_limit_is_full_becomes_blocked_and_one_due_later_becomes_scheduled()
    {
        var parent = await InsertAsync(Job("p"));
        var holder = await InsertAsync(Job("h") with { ConcurrencyKey = "k", ConcurrencyLimit = 1 });
        var limited = await InsertAsync(After("c", parent) with { ConcurrencyKey = "k", ConcurrencyLimit = 1 });
        var later = await InsertAsync(After("l", parent) with { ScheduledAt = T0.AddHours(1) });

        await SucceedAsync(await RegisterAsync(), "p");

        Assert.Equal([JobState.Ready, JobState.Blocked, JobState.Scheduled], await StatesAsync(holder, limited, later));
    }

    [Fact]
    public async Task A_parent_deleted_on_completion_still_advances_its_children()
    {
        var parent = await InsertAsync(Job("p"));
        var child = await InsertAsync(After("c", parent));

        await SucceedAsync(await RegisterAsync(), "p", preserve: false);

        Assert.Null(await Storage.JobGetAsync(parent, default));
        Assert.Equal(JobState.Ready, await StateAsync(child));
        Assert.Equal(ContinueWhen.Succeeded, Assert.Single((await Storage.JobGetAsync(child, default))!.Parents).Outcome);
    }

    [Fact]
    public async Task Discarding_an_awaiting_job_cascades_to_its_own_children()
    {
        var a = await InsertAsync(Job("a"));
        var b = await InsertAsync(After("b", a));
        var c = await InsertAsync(After("c", b));

        Assert.Equal(1, await Storage.JobsDiscardAsync(new JobsSelectionParams([b], null, null, 10, T0), default));

        Assert.Equal([JobState.Ready, JobState.Discarded, JobState.Discarded], await StatesAsync(a, b, c));
        await SucceedAsync(await RegisterAsync(), "a");
        Assert.Equal(JobState.Discarded, await StateAsync(b));
    }

    [Fact]
    public async Task A_completion_with_the_next_claim_advances_the_workflow_and_still_claims()
    {
        var parent = await InsertAsync(Job("p"));
        var child = await InsertAsync(After("c", parent));
        var plain = await InsertAsync(Job("p"));
        var process = await RegisterAsync();
        var claims = await Storage.JobsClaimAsync(new JobsClaimParams(process, new QueueFilter(QueueMatch.Exact, "p"), 2, T0), default);
        Assert.Equal([parent, plain], claims.Select(c => c.JobId));
        var next = await InsertAsync(Job("p"));

        var result = await Storage.JobsCompleteAndClaimAsync(
            new JobsCompleteParams(process, [.. claims.Select(c => c.Ref)], T0, true),
            new JobsClaimParams(process, new QueueFilter(QueueMatch.Exact, "p"), 5, T0),
            default);

        Assert.Equal(claims.Select(c => c.ClaimId).Order(), result.Completed.Order());
        Assert.Equal(next, Assert.Single(result.Claimed).JobId);
        Assert.Equal([JobState.Finished, JobState.Finished, JobState.Ready], await StatesAsync(parent, plain, child));
    }

    [Fact]
    public async Task A_parent_failed_by_recovery_settles_its_children_and_its_batch()
    {
        var started = await Storage.BatchStartAsync(new BatchStartParams([Job("p") with { MaxWorkerLosses = 0 }], [Callback(BatchEvent.Failure)], T0), default);
        var parent = started.JobIds[0];
        var child = await InsertAsync(After("c", parent));
        var dead = await RegisterAsync();
        await ClaimAsync(dead, "p");

        var recovered = await Storage.ProcessRecoverAsync(new ProcessRecoverParams([dead], RecoverCondition.None, new WorkerLostCause("process-missing", "gone"), T0), default);

        Assert.Equal(1, recovered!.Failed);
        Assert.Equal([JobState.Failed, JobState.Discarded], await StatesAsync(parent, child));
        Assert.Equal((1L, BatchState.Failed), ((await Storage.BatchGetAsync(started.BatchId, default))!.Failed, (await Storage.BatchGetAsync(started.BatchId, default))!.State));
        Assert.Equal(1, await CallbackJobsAsync(BatchEvent.Failure));
    }

    [Fact]
    public async Task A_parent_failed_by_an_operator_settles_its_children()
    {
        var parent = await InsertAsync(Job("p"));
        var onFailure = await InsertAsync(After("c", ContinueWhen.Failed, UnmetPolicy.Discard, parent));
        var claim = await ClaimAsync(await RegisterAsync(), "p");

        await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([claim.ClaimId], ClaimAction.Fail, new WorkerLostCause("operator", "failed by an operator: stuck"), T0), default);

        Assert.Equal([JobState.Failed, JobState.Ready], await StatesAsync(parent, onFailure));
    }

    [Fact]
    public async Task Plain_jobs_carry_no_workflow_marks()
    {
        var plain = await InsertAsync(Job("p"));
        await SucceedAsync(await RegisterAsync(), "p");
        Assert.Equal(0, await Db.ScalarAsync($"SELECT count(*) FROM keel_jobs WHERE id = {plain} AND (workflow IS NOT NULL OR batch_id IS NOT NULL)"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_dependencies"));
    }

    [Fact]
    public async Task A_batch_completes_once_when_its_last_job_settles_and_enqueues_the_matching_callbacks()
    {
        var started = await Storage.BatchStartAsync(
            new BatchStartParams([Job("b1"), Job("b2"), Job("b3")], [Callback(BatchEvent.Success), Callback(BatchEvent.Complete), Callback(BatchEvent.Failure)], T0) { Description = "three" },
            default);
        var process = await RegisterAsync();
        Assert.Equal(3, (await Storage.BatchGetAsync(started.BatchId, default))!.Pending);
        Assert.Equal(started.BatchId, (await Storage.JobGetAsync(started.JobIds[0], default))!.BatchId);

        await SucceedAsync(process, "b1");
        await FailForGoodAsync(process, "b2");
        Assert.Equal(0, await CallbackJobsAsync(BatchEvent.Complete));
        await SucceedAsync(process, "b3");

        var batch = (await Storage.BatchGetAsync(started.BatchId, default))!;
        Assert.Equal((3L, 0L, 2L, 1L, 0L, BatchState.Failed), (batch.Total, batch.Pending, batch.Succeeded, batch.Failed, batch.Discarded, batch.State));
        Assert.Equal((0L, 1L, 1L), (await CallbackJobsAsync(BatchEvent.Success), await CallbackJobsAsync(BatchEvent.Complete), await CallbackJobsAsync(BatchEvent.Failure)));
        Assert.Equal([null, batch.Callbacks[1].JobId, batch.Callbacks[2].JobId], batch.Callbacks.Select(c => c.JobId));
        Assert.Equal(JobState.Ready, await StateAsync(batch.Callbacks[1].JobId!.Value));
        Assert.Equal(3, (await Storage.BatchJobsListAsync(new BatchJobsListParams(started.BatchId, null, 10), default)).Count);
    }

    [Fact]
    public async Task One_completion_of_jobs_of_several_batches_counts_each_batch_and_completes_those_it_empties()
    {
        var first = await Storage.BatchStartAsync(new BatchStartParams([Job("m"), Job("m"), Job("m")], [Callback(BatchEvent.Complete)], T0), default);
        var second = await Storage.BatchStartAsync(new BatchStartParams([Job("m"), Job("m")], [Callback(BatchEvent.Success)], T0), default);
        var process = await RegisterAsync();
        var claims = await Storage.JobsClaimAsync(new JobsClaimParams(process, new QueueFilter(QueueMatch.Exact, "m"), 4, T0), default);
        Assert.Equal([.. first.JobIds, second.JobIds[0]], claims.Select(c => c.JobId));

        // Two of the first batch and one of the second: neither empties.
        var done = await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claims[0].Ref, claims[1].Ref, claims[3].Ref], T0, true), default);
        Assert.Equal(3, done.Count);
        Assert.Equal((1L, 2L), ((await Storage.BatchGetAsync(first.BatchId, default))!.Pending, (await Storage.BatchGetAsync(first.BatchId, default))!.Succeeded));
        Assert.Equal(1L, (await Storage.BatchGetAsync(second.BatchId, default))!.Pending);
        Assert.Equal((0L, 0L), (await CallbackJobsAsync(BatchEvent.Complete), await CallbackJobsAsync(BatchEvent.Success)));

        // The last of each in one completion: both complete, each callback once.
        var last = await ClaimAsync(process, "m");
        Assert.Equal(2, (await Storage.JobsCompleteAsync(new JobsCompleteParams(process, [claims[2].Ref, last.Ref], T0, false), default)).Count);
        Assert.Equal(BatchState.Succeeded, (await Storage.BatchGetAsync(first.BatchId, default))!.State);
        Assert.Equal(BatchState.Succeeded, (await Storage.BatchGetAsync(second.BatchId, default))!.State);
        Assert.Equal((1L, 1L), (await CallbackJobsAsync(BatchEvent.Complete), await CallbackJobsAsync(BatchEvent.Success)));
    }

    [Fact]
    public async Task A_retried_job_reopens_its_batch_and_success_is_enqueued_once_when_all_succeed()
    {
        var started = await Storage.BatchStartAsync(new BatchStartParams([Job("b1"), Job("b2")], [Callback(BatchEvent.Success), Callback(BatchEvent.Complete)], T0), default);
        var process = await RegisterAsync();
        await SucceedAsync(process, "b1");
        await FailForGoodAsync(process, "b2");
        Assert.Equal((0L, 1L), (await CallbackJobsAsync(BatchEvent.Success), await CallbackJobsAsync(BatchEvent.Complete)));

        Assert.Equal(1, await Storage.JobsRetryAsync(new JobsSelectionParams([started.JobIds[1]], null, null, 10, T0), default));
        Assert.Equal((1L, 0L), ((await Storage.BatchGetAsync(started.BatchId, default))!.Pending, (await Storage.BatchGetAsync(started.BatchId, default))!.Failed));
        await SucceedAsync(process, "b2");

        var batch = (await Storage.BatchGetAsync(started.BatchId, default))!;
        Assert.Equal((2L, BatchState.Succeeded), (batch.Succeeded, batch.State));
        Assert.Equal((1L, 1L), (await CallbackJobsAsync(BatchEvent.Success), await CallbackJobsAsync(BatchEvent.Complete)));
    }

    [Fact]
    public async Task Jobs_join_an_open_batch_and_a_completed_batch_refuses_them()
    {
        var started = await Storage.BatchStartAsync(new BatchStartParams([Job("b1")], [Callback(BatchEvent.Complete)], T0), default);
        var added = await Storage.JobsInsertAsync(new JobsInsertParams([Job("b2")], T0) { BatchId = started.BatchId }, default);
        var process = await RegisterAsync();
        await SucceedAsync(process, "b1");
        Assert.Equal(0, await CallbackJobsAsync(BatchEvent.Complete));
        await SucceedAsync(process, "b2");
        Assert.Equal(1, await CallbackJobsAsync(BatchEvent.Complete));
        Assert.Equal(started.BatchId, (await Storage.JobGetAsync(added[0], default))!.BatchId);

        await Assert.ThrowsAsync<KeelBatchClosedException>(() => Storage.JobsInsertAsync(new JobsInsertParams([Job("b3")], T0) { BatchId = started.BatchId }, default));
        await Assert.ThrowsAsync<KeelBatchClosedException>(() => Storage.JobsInsertAsync(new JobsInsertParams([Job("b3")], T0) { BatchId = 999_999 }, default));
        await Assert.ThrowsAsync<ArgumentException>(() => Storage.BatchStartAsync(new BatchStartParams([Job("u") with { UniqueKey = "test/u" }], [], T0), default));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_batches"));
        Assert.Equal(2, (await Storage.BatchGetAsync(started.BatchId, default))!.Total);
    }

    [Fact]
    public async Task A_nested_batch_counts_as_one_job_of_its_parent()
    {
        var outer = await Storage.BatchStartAsync(new BatchStartParams([Job("o1")], [Callback(BatchEvent.Complete)], T0), default);
        var inner = await Storage.BatchStartAsync(new BatchStartParams([Job("i1"), Job("i2")], [Callback(BatchEvent.Success)], T0) { ParentBatchId = outer.BatchId }, default);
        Assert.Equal((2L, 2L), ((await Storage.BatchGetAsync(outer.BatchId, default))!.Total, (await Storage.BatchGetAsync(outer.BatchId, default))!.Pending));
        var process = await RegisterAsync();

        await SucceedAsync(process, "o1");
        await SucceedAsync(process, "i1");
        Assert.Equal(0, await CallbackJobsAsync(BatchEvent.Complete));
        await SucceedAsync(process, "i2");

        Assert.Equal(inner.BatchId, (await Storage.BatchGetAsync(inner.BatchId, default))!.Id);
        Assert.Equal(BatchState.Succeeded, (await Storage.BatchGetAsync(inner.BatchId, default))!.State);
        var parent = (await Storage.BatchGetAsync(outer.BatchId, default))!;
        Assert.Equal((0L, 2L, BatchState.Succeeded), (parent.Pending, parent.Succeeded, parent.State));
        Assert.Equal((1L, 1L), (await CallbackJobsAsync(BatchEvent.Success), await CallbackJobsAsync(BatchEvent.Complete)));
    }

    [Fact]
    public async Task An_empty_batch_completes_when_it_starts()
    {
        var started = await Storage.BatchStartAsync(new BatchStartParams([], [Callback(BatchEvent.Success), Callback(BatchEvent.Complete)], T0), default);

        Assert.Equal(BatchState.Succeeded, (await Storage.BatchGetAsync(started.BatchId, default))!.State);
        Assert.Equal((1L, 1L), (await CallbackJobsAsync(BatchEvent.Success), await CallbackJobsAsync(BatchEvent.Complete)));
    }

    [Fact]
    public async Task Discarded_batch_jobs_count_as_discarded_and_a_dag_inside_a_batch_is_built_in_one_call()
    {
        var started = await Storage.BatchStartAsync(
            new BatchStartParams([Job("a"), Job("b") with { Dependencies = [new NewDependency(null, 0, ContinueWhen.Succeeded, UnmetPolicy.Discard)] }], [Callback(BatchEvent.Failure)], T0),
            default);
        Assert.Equal(JobState.Awaiting, await StateAsync(started.JobIds[1]));

        await FailForGoodAsync(await RegisterAsync(), "a");

        var batch = (await Storage.BatchGetAsync(started.BatchId, default))!;
        Assert.Equal((0L, 1L, 1L, BatchState.Failed), (batch.Pending, batch.Failed, batch.Discarded, batch.State));
        Assert.Equal(1, await CallbackJobsAsync(BatchEvent.Failure));
    }

    [Fact]
    public async Task A_batch_started_in_a_rolled_back_transaction_leaves_nothing()
    {
        await using (var connection = await Db.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await Storage.BatchStartAsync(new BatchStartParams([Job("a")], [Callback(BatchEvent.Complete)], T0, connection, transaction), default);
            await transaction.RollbackAsync();
        }

        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_batches"));
        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_jobs"));
    }

    [Fact]
    public async Task A_continuation_enqueued_in_the_callers_transaction_exists_only_if_it_commits()
    {
        var parent = await InsertAsync(Job("p"));
        await using (var connection = await Db.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            await Storage.JobsInsertAsync(new JobsInsertParams([After("c", parent)], T0, connection, transaction), default);
            await transaction.RollbackAsync();
        }

        Assert.Equal(0, await Db.ScalarAsync("SELECT count(*) FROM keel_job_dependencies"));
        long child;
        await using (var connection = await Db.OpenAsync())
        {
            await using var transaction = await connection.BeginTransactionAsync();
            child = (await Storage.JobsInsertAsync(new JobsInsertParams([After("c", parent)], T0, connection, transaction), default))[0];
            await Storage.BatchStartAsync(new BatchStartParams([Job("b")], [], T0, connection, transaction), default);
            await transaction.CommitAsync();
        }

        Assert.Equal(JobState.Awaiting, await StateAsync(child));
        Assert.Equal(1, await Db.ScalarAsync("SELECT count(*) FROM keel_batches"));
        await SucceedAsync(await RegisterAsync(), "p");
        Assert.Equal(JobState.Ready, await StateAsync(child));
    }

    [Fact]
    public async Task A_large_batch_is_inserted_in_one_call_and_listed()
    {
        const int Count = 5_000;
        var started = await Storage.BatchStartAsync(new BatchStartParams([.. Enumerable.Range(0, Count).Select(_ => Job("bulk"))], [Callback(BatchEvent.Complete)], T0), default);

        Assert.Equal(Count, started.JobIds.Count);
        Assert.Equal(Count, await Db.ScalarAsync($"SELECT count(*) FROM keel_jobs WHERE batch_id = {started.BatchId}"));
        Assert.Equal(Count, (await Storage.BatchGetAsync(started.BatchId, default))!.Pending);
        Assert.Equal(started.BatchId, Assert.Single(await Storage.BatchesListAsync(new BatchesListParams(true, null, 10), default)).Id);
        Assert.Empty(await Storage.BatchesListAsync(new BatchesListParams(false, null, 10), default));
    }

    [Fact]
    public async Task Retention_deletes_batches_completed_before_the_cutoff()
    {
        var started = await Storage.BatchStartAsync(new BatchStartParams([], [Callback(BatchEvent.Complete)], T0), default);

        await Storage.JobsClearFinishedAsync(new JobsClearFinishedParams(TimeSpan.FromDays(1), 100, T0.AddDays(2)), default);

        Assert.Null(await Storage.BatchGetAsync(started.BatchId, default));
    }

    private KeelAdmin NewAdmin() => new(Storage, Options.Create(new KeelOptions()), NullLoggerFactory.Instance, new KeelClock(TimeProvider.System), new JobSignal());

    /// <summary>
    /// Cancels a job one of the ways a cancel ends it: before it starts, or while it runs (a request on its claim) and
    /// then its run honours the token, fails first (for good or with a retry time), is released by its worker or an
    /// operator, its process deregisters, or dies and is recovered. Returns the claim it ran under, if it ran.
    /// </summary>
    private async Task<(long Process, ClaimedJob Claim)?> CancelAsync(long jobId, string queue, string way)
    {
        if (way == "before-start")
        {
            Assert.Equal(CancelResult.Cancelled, await NewAdmin().CancelAsync(jobId, "stop it"));
            return null;
        }

        var process = await RegisterAsync();
        var claim = await ClaimAsync(process, queue);
        Assert.Equal(jobId, claim.JobId);
        Assert.False((await Storage.ClaimCancelRequestAsync(new ClaimCancelRequestParams(jobId, "stop it", T0), default))!.AlreadyRequested);
        var broken = new FailureRecord("System.IO.IOException", "disk", null);
        switch (way)
        {
            case "honoured":
                Assert.True(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(process, claim.Ref, new RunEnding(RunOutcomes.Cancelled, RunCauses.CancelHonoured, "stop it"), T0), default));
                break;
            case "failed":
                Assert.True(await Storage.JobFailAsync(new JobFailParams(process, claim.Ref, broken, null, T0), default));
                break;
            case "failed-with-a-retry":
                Assert.True(await Storage.JobFailAsync(new JobFailParams(process, claim.Ref, broken, T0.AddMinutes(1), T0), default));
                break;
            case "released":
                await Storage.ClaimsReleaseAsync(new ClaimsReleaseParams(process, null, T0) { Reason = new RunEnding(RunOutcomes.Released, "stop", "its worker stopped") }, default);
                break;
            case "released-by-an-operator":
                await Storage.ClaimsRecoverAsync(new ClaimsRecoverParams([claim.ClaimId], ClaimAction.Release, new WorkerLostCause("operator", "released by an operator"), T0), default);
                break;
            case "deregistered":
                await Storage.ProcessDeregisterAsync(new ProcessDeregisterParams(process, T0), default);
                break;
            case "recovered":
                Assert.Equal(1, (await Storage.ProcessRecoverAsync(ProcessRecoverParams.Dead(process, new WorkerLostCause("process-exited", "killed by signal 9"), T0), default))!.Cancelled);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(way), way, "no such way to cancel");
        }

        return (process, claim);
    }

    [Theory]
    [InlineData("before-start")]
    [InlineData("honoured")]
    [InlineData("failed")]
    [InlineData("failed-with-a-retry")]
    [InlineData("released")]
    [InlineData("released-by-an-operator")]
    [InlineData("deregistered")]
    [InlineData("recovered")]
    public async Task A_cancelled_parent_settles_its_children_and_completes_its_batch_once(string way)
    {
        var started = await Storage.BatchStartAsync(new BatchStartParams([Job("p"), Job("q")], [Callback(BatchEvent.Success), Callback(BatchEvent.Complete), Callback(BatchEvent.Failure)], T0), default);
        var parent = started.JobIds[0];
        var onSuccess = await InsertAsync(After("s", parent));
        var onDiscard = await InsertAsync(After("d", ContinueWhen.Discarded, UnmetPolicy.Discard, parent));
        var anyway = await InsertAsync(After("r", ContinueWhen.Succeeded, UnmetPolicy.Run, parent));
        await SucceedAsync(await RegisterAsync(), "q");
        Assert.Equal(0, await CallbackJobsAsync(BatchEvent.Complete));

        var ran = await CancelAsync(parent, "p", way);

        Assert.Equal([JobState.Discarded, JobState.Discarded, JobState.Ready, JobState.Ready], await StatesAsync(parent, onSuccess, onDiscard, anyway));
        Assert.Equal(ContinueWhen.Discarded, Assert.Single((await Storage.JobGetAsync(onDiscard, default))!.Parents).Outcome);
        if (ran is var (process, claim))
        {
            // The claim is gone: a late end of the same run settles nothing a second time.
            Assert.False(await Storage.JobFailAsync(new JobFailParams(process, claim.Ref, new FailureRecord("E", "late", null), null, T0), default));
            Assert.False(await Storage.JobCancelFinishAsync(new JobCancelFinishParams(process, claim.Ref, new RunEnding(RunOutcomes.Cancelled, RunCauses.CancelHonoured, "late"), T0), default));
        }

        var batch = (await Storage.BatchGetAsync(started.BatchId, default))!;
        Assert.Equal((0L, 1L, 0L, 1L, BatchState.Failed), (batch.Pending, batch.Succeeded, batch.Failed, batch.Discarded, batch.State));
        Assert.Equal((0L, 1L, 1L), (await CallbackJobsAsync(BatchEvent.Success), await CallbackJobsAsync(BatchEvent.Complete), await CallbackJobsAsync(BatchEvent.Failure)));
    }

    [Fact]
    public async Task A_continuation_cancelled_while_it_awaits_is_discarded_and_settles_its_own_children()
    {
        var parent = await InsertAsync(Job("p"));
        var child = await InsertAsync(After("c", parent));
        var onDiscard = await InsertAsync(After("d", ContinueWhen.Discarded, UnmetPolicy.Discard, child));

        Assert.Equal(CancelResult.Cancelled, await NewAdmin().CancelAsync(child, "not needed"));

        Assert.Equal([JobState.Ready, JobState.Discarded, JobState.Ready], await StatesAsync(parent, child, onDiscard));
        await SucceedAsync(await RegisterAsync(), "p");
        Assert.Equal([JobState.Finished, JobState.Discarded], await StatesAsync(parent, child));
    }
#pragma warning restore CS1591
}
