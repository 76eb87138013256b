using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Runtime;

/// <summary>How one run ended.</summary>
internal enum RunResult
{
    /// <summary>PerformAsync returned.</summary>
    Succeeded,

    /// <summary>It threw, timed out, or could not start (unknown kind, bad arguments).</summary>
    Failed,

    /// <summary>The worker cancelled it (stop, lost lease, prune) and it returned: its claim goes back uncharged.</summary>
    Interrupted,

    /// <summary>
    /// It was cancelled (by the worker or its own timeout) and did not return within the cancellation grace: it may
    /// still be running. The worker decides what becomes of its claim and its slot.
    /// </summary>
    Unresponsive,
}

/// <summary>The outcome of one run, before it is written under the claim.</summary>
/// <param name="Result">How it ended.</param>
/// <param name="Error">The failure, for <see cref="RunResult.Failed"/> (and a timeout that was ignored).</param>
/// <param name="Options">The job kind's options, when the kind is known.</param>
/// <param name="Reason">Why it was cancelled, for <see cref="RunResult.Interrupted"/> and <see cref="RunResult.Unresponsive"/>.</param>
/// <param name="Abandoned">For <see cref="RunResult.Unresponsive"/>: the job's task, which may still finish some day.</param>
internal readonly record struct RunOutcome(RunResult Result, Exception? Error, JobOptions? Options, string? Reason = null, Task? Abandoned = null);

/// <summary>What the worker gives a run: its cancellation (with the reason), the grace after it, and a claim check.</summary>
/// <param name="Stop">Fires when the worker cancels the run.</param>
/// <param name="StopReason">Why <paramref name="Stop"/> fired.</param>
/// <param name="Grace">How long a cancelled run may take to return before it counts as unresponsive.</param>
/// <param name="ClaimCheck">Whether the claim is still held (for <see cref="JobContext.IsClaimHeldAsync"/>).</param>
/// <param name="OnTimeout">Called when the job's own timeout cancels it (for the log).</param>
/// <param name="StopMessage">When the stop is a cancel request: who asked and why (<see cref="JobContext.CancellationMessage"/>).</param>
/// <param name="CheckpointWriter">Writes a checkpoint under the claim (for <see cref="JobContext.SaveCheckpointAsync{T}"/>); false when it is no longer held.</param>
/// <param name="ProgressWriter">Reports progress, coalesced (for <see cref="JobContext.ReportProgressAsync"/>).</param>
/// <param name="Logger">The run's <see cref="JobContext.Logger"/>.</param>
/// <param name="ResultWriter">Writes the result under the claim (for <see cref="JobContext.SetResultAsync{T}"/>).</param>
internal sealed record RunControl(CancellationToken Stop, Func<string?> StopReason, TimeSpan Grace, Func<CancellationToken, Task<bool>>? ClaimCheck, Action<TimeSpan>? OnTimeout = null, Func<string?>? StopMessage = null, Func<string, CancellationToken, Task<bool>>? CheckpointWriter = null, Func<double, string?, CancellationToken, Task>? ProgressWriter = null, Microsoft.Extensions.Logging.ILogger? Logger = null, Func<string, CancellationToken, Task<bool>>? ResultWriter = null);

/// <summary>Runs one claimed job: resolves it in its own DI scope, applies the timeout, classifies the ending.</summary>
internal sealed class JobExecutor(IServiceProvider services, JobRegistry registry, KeelOptions options)
{
    /// <summary>The runs of this host's workers, shared so that a suspect can run alone in its process.</summary>
    public JobIsolation Isolation { get; } = new();

    public async Task<RunOutcome> RunAsync(ClaimedJob job, RunControl control)
    {
        var descriptor = registry.FindByKind(job.Kind);
        if (descriptor is null)
        {
            return new RunOutcome(RunResult.Failed, new UnknownJobKindException($"job {job.JobId} has kind '{job.Kind}', which this application does not register; register it with AddJob or give a class [Job(\"{job.Kind}\")]"), null);
        }

        using var timeout = descriptor.Options.Timeout is { } limit ? new CancellationTokenSource(limit) : null;
        using var timedOut = timeout is not null && control.OnTimeout is { } onTimeout ? timeout.Token.Register(() => onTimeout(descriptor.Options.Timeout!.Value)) : default;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(control.Stop, timeout.Token);
        var token = linked?.Token ?? control.Stop;
        string? Reason() => control.Stop.IsCancellationRequested ? control.StopReason() : timeout?.IsCancellationRequested == true ? "timeout" : null;
        var context = new JobContext(job.JobId, job.Kind, job.Queue, job.Attempt, job.MaxAttempts, job.CreatedAt, job.ClaimId, control.ClaimCheck, Reason, control.StopMessage)
        {
            InitialCheckpoint = job.Checkpoint,
            CheckpointWriter = control.CheckpointWriter,
            ProgressWriter = control.ProgressWriter,
            Logger = control.Logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
            ResultWriter = control.ResultWriter,
            MaxResultBytes = options.MaxResultBytes,
            JsonOptions = options.JsonSerializerOptions,
            MaxCheckpointBytes = options.MaxCheckpointBytes,
            BatchId = job.BatchId,
        };

        // On the thread pool, so that a job that blocks synchronously can neither stall the worker that started it nor
        // keep the worker from giving up on it once it ignores its cancellation.
        var run = Task.Run(
            async () =>
            {
                await using var scope = services.CreateAsyncScope();
                var instance = scope.ServiceProvider.GetService(descriptor.JobType)
                    ?? ActivatorUtilities.CreateInstance(scope.ServiceProvider, descriptor.JobType);
                await descriptor.Invoke(instance, job.Args, options.JsonSerializerOptions, context, token);
            },
            CancellationToken.None);

        try
        {
            await run.WaitAsync(token);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested && !run.IsCompleted)
        {
            // Cancelled: the job gets the grace to return, then the worker stops waiting for it.
            try
            {
                await run.WaitAsync(control.Grace);
            }
            catch (TimeoutException)
            {
                _ = run.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                var reason = Reason() ?? "cancelled";
                Exception? error = reason == "timeout" ? new JobTimeoutException($"job {job.JobId} ({job.Kind}) exceeded its timeout of {descriptor.Options.Timeout} and did not stop within {control.Grace} of being cancelled") : null;
                return new RunOutcome(RunResult.Unresponsive, error, descriptor.Options, reason, run);
            }
#pragma warning disable CA1031 // The job's own ending is classified below.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
#pragma warning disable CA1031 // The job's own ending is classified below.
        catch (Exception)
#pragma warning restore CA1031
        {
        }

        if (run.IsCompletedSuccessfully)
        {
            return new RunOutcome(RunResult.Succeeded, null, descriptor.Options);
        }

        var thrown = run.Exception?.InnerException ?? (Exception?)new OperationCanceledException(token);
        if (control.Stop.IsCancellationRequested)
        {
            return new RunOutcome(RunResult.Interrupted, null, descriptor.Options, control.StopReason() ?? "cancelled");
        }

        if (thrown is OperationCanceledException && timeout?.IsCancellationRequested == true)
        {
            return new RunOutcome(RunResult.Failed, new JobTimeoutException($"job {job.JobId} ({job.Kind}) exceeded its timeout of {descriptor.Options.Timeout}", thrown), descriptor.Options);
        }

        return new RunOutcome(RunResult.Failed, thrown, descriptor.Options);
    }
}
