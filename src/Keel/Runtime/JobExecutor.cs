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

    /// <summary>The worker cancelled it to stop; the claim goes back to ready without counting an attempt.</summary>
    Interrupted,
}

/// <summary>The outcome of one run, before it is written under the claim.</summary>
internal readonly record struct RunOutcome(RunResult Result, Exception? Error, JobOptions? Options);

/// <summary>Runs one claimed job: resolves it in its own DI scope, applies the timeout, classifies the ending.</summary>
internal sealed class JobExecutor(IServiceProvider services, JobRegistry registry, KeelOptions options)
{
    public async Task<RunOutcome> RunAsync(ClaimedJob job, CancellationToken stopToken)
    {
        var descriptor = registry.FindByKind(job.Kind);
        if (descriptor is null)
        {
            return new RunOutcome(RunResult.Failed, new UnknownJobKindException($"job {job.JobId} has kind '{job.Kind}', which this application does not register; register it with AddJob or give a class [Job(\"{job.Kind}\")]"), null);
        }

        using var timeout = descriptor.Options.Timeout is { } limit ? new CancellationTokenSource(limit) : null;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(stopToken, timeout.Token);
        var token = linked?.Token ?? stopToken;
        var context = new JobContext(job.JobId, job.Kind, job.Queue, job.Attempt, job.MaxAttempts, job.CreatedAt);
        try
        {
            await using var scope = services.CreateAsyncScope();
            var instance = scope.ServiceProvider.GetService(descriptor.JobType)
                ?? ActivatorUtilities.CreateInstance(scope.ServiceProvider, descriptor.JobType);
            // Yield first so a job that blocks synchronously cannot stall the worker loop that started it.
            await Task.Yield();
            await descriptor.Invoke(instance, job.Args, options.JsonSerializerOptions, context, token);
            return new RunOutcome(RunResult.Succeeded, null, descriptor.Options);
        }
        catch (Exception) when (stopToken.IsCancellationRequested)
        {
            return new RunOutcome(RunResult.Interrupted, null, descriptor.Options);
        }
        catch (OperationCanceledException e) when (timeout?.IsCancellationRequested == true)
        {
            return new RunOutcome(RunResult.Failed, new JobTimeoutException($"job {job.JobId} ({job.Kind}) exceeded its timeout of {descriptor.Options.Timeout}", e), descriptor.Options);
        }
        catch (Exception e)
        {
            return new RunOutcome(RunResult.Failed, e, descriptor.Options);
        }
    }
}
