using System.Threading.Channels;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// Writes successful runs in batches: whatever finished while the previous batch was being written goes in
/// the next statement. Each completion is still guarded by its own claim, so batching never lets a late
/// result through.
/// </summary>
internal sealed class Completer
{
    private const int MaxBatch = 1000;
    private readonly Channel<Completion> _channel = Channel.CreateUnbounded<Completion>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IKeelStorage _storage;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly bool _preserveFinishedJobs;
    private readonly CancellationTokenSource _abandon = new();
    private readonly Task _loop;

    public Completer(IKeelStorage storage, ILogger logger, KeelClock clock, bool preserveFinishedJobs)
    {
        _storage = storage;
        _logger = logger;
        _clock = clock;
        _preserveFinishedJobs = preserveFinishedJobs;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Called for each rejected completion: the claim was no longer held.</summary>
    public Action<long, ClaimRef>? Rejected { get; set; }

    /// <summary>
    /// Called once after each written batch, after every job's <c>onWritten</c>: a worker wakes once per batch and
    /// claims for all the slots it got back in one statement, instead of once per job in many small ones.
    /// </summary>
    public Action? BatchWritten { get; set; }

    /// <summary>
    /// Asked before each write with the process and the number of slots the batch frees: the claim to make in the
    /// same round trip (<see cref="IKeelStorage.JobsCompleteAndClaimAsync"/>), or null for none.
    /// </summary>
    public Func<long, int, JobsClaimParams?>? ClaimAlong { get; set; }

    /// <summary>
    /// Called once for every claim <see cref="ClaimAlong"/> asked for, after the batch's <c>onWritten</c> calls, with
    /// the jobs it claimed (empty when the combined write failed and the completions were written alone).
    /// </summary>
    public Action<JobsClaimParams, IReadOnlyList<ClaimedJob>>? ClaimedAlong { get; set; }

    /// <summary>
    /// Queues a completion; the task ends once it is written (or rejected, or abandoned at shutdown). A worker keeps
    /// the job's slot until then, so it never holds more claims than it has threads: a crash loses at most that many.
    /// The result is true when the completion was written, false when it was rejected or abandoned.
    /// </summary>
    /// <param name="processId">The process holding the claim.</param>
    /// <param name="claim">The claim.</param>
    /// <param name="onWritten">Run on the completer's loop as soon as the completion is written or rejected (before
    /// <see cref="BatchWritten"/>): where a worker gives the job's slot back.</param>
    public Task<bool> CompleteAsync(long processId, ClaimRef claim, Action? onWritten = null)
    {
        var completion = new Completion(processId, claim, onWritten, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_channel.Writer.TryWrite(completion))
        {
            onWritten?.Invoke();
            completion.Done.TrySetResult(false); // Draining already finished: the claim stays and is released or recovered.
        }

        return completion.Done.Task;
    }

    /// <summary>
    /// Writes everything posted so far and stops. After <paramref name="timeout"/> (the database is down, say) it
    /// gives up: those claims stay in the database and are released or recovered, so the jobs run again.
    /// </summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _channel.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            await _abandon.CancelAsync();
            await _loop;
        }
        finally
        {
            _abandon.Dispose();
        }
    }

    private async Task RunAsync()
    {
        var batch = new List<Completion>(MaxBatch);
        try
        {
            while (await _channel.Reader.WaitToReadAsync())
            {
                // Jobs claimed together finish together: let the ones already scheduled post theirs first.
                await Task.Yield();
                batch.Clear();
                while (batch.Count < MaxBatch && _channel.Reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                foreach (var group in batch.GroupBy(item => item.ProcessId))
                {
                    var claims = group.Select(item => item.Claim).ToList();
                    var along = ClaimAlong?.Invoke(group.Key, claims.Count);
                    HashSet<long> accepted = [];
                    IReadOnlyList<ClaimedJob> claimed = [];
                    try
                    {
                        (accepted, claimed) = await WriteAsync(group.Key, claims, along);
                    }
                    finally
                    {
                        // Slots first, then the jobs claimed into them: the worker never counts more than it has.
                        foreach (var item in group)
                        {
                            item.OnWritten?.Invoke();
                        }

                        if (along is not null)
                        {
                            ClaimedAlong?.Invoke(along, claimed);
                        }
                    }

                    foreach (var item in group)
                    {
                        item.Done.TrySetResult(accepted.Contains(item.Claim.ClaimId));
                    }
                }

                batch.Clear();
                BatchWritten?.Invoke();
            }
        }
        catch (Exception) when (_abandon.IsCancellationRequested)
        {
        }
        finally
        {
            // Whatever was not written stays claimed in the database (released or recovered later); never leave a waiter hanging.
            foreach (var item in batch)
            {
                item.OnWritten?.Invoke();
                item.Done.TrySetResult(false);
            }

            while (_channel.Reader.TryRead(out var item))
            {
                item.OnWritten?.Invoke();
                item.Done.TrySetResult(false);
            }
        }
    }

    private sealed record Completion(long ProcessId, ClaimRef Claim, Action? OnWritten, TaskCompletionSource<bool> Done);

    private async Task<(HashSet<long> Accepted, IReadOnlyList<ClaimedJob> Claimed)> WriteAsync(long processId, List<ClaimRef> claims, JobsClaimParams? along)
    {
        if (along is not null)
        {
            try
            {
                var result = await _storage.JobsCompleteAndClaimAsync(new JobsCompleteParams(processId, claims, _clock.StorageNow, _preserveFinishedJobs), along, _abandon.Token);
                return (Held(processId, claims, result.Completed), result.Claimed);
            }
#pragma warning disable CA1031 // Nothing was written: write the completions alone, with their retries; the claim can wait.
            catch (Exception) when (!_abandon.IsCancellationRequested)
#pragma warning restore CA1031
            {
            }
        }

        return (await CompleteAsync(processId, claims), []);
    }

    private async Task<HashSet<long>> CompleteAsync(long processId, List<ClaimRef> claims)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            try
            {
                var accepted = await StorageRetry.RunAsync(
                    _storage,
                    _logger,
                    "complete jobs",
                    ct => _storage.JobsCompleteAsync(new JobsCompleteParams(processId, claims, _clock.StorageNow, _preserveFinishedJobs), ct),
                    _abandon.Token);
                return Held(processId, claims, accepted);
            }
#pragma warning disable CA1031 // A completion must never be dropped: keep trying; the claim keeps the job safe meanwhile.
            catch (Exception e) when (!_abandon.IsCancellationRequested)
#pragma warning restore CA1031
            {
                Log.WorkerLoopError(_logger, e, "completer", delay);
                await Task.Delay(delay, CancellationToken.None);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    private HashSet<long> Held(long processId, List<ClaimRef> claims, IReadOnlyList<long> accepted)
    {
        var held = accepted.ToHashSet();
        if (accepted.Count != claims.Count)
        {
            foreach (var claim in claims.Where(c => !held.Contains(c.ClaimId)))
            {
                Log.LateResultRejected(_logger, claim.JobId, claim.ClaimId, processId);
                KeelMetrics.LateResultsRejected.Add(1, new KeyValuePair<string, object?>("keel.result", "finished"));
                Rejected?.Invoke(processId, claim);
            }
        }

        return held;
    }
}
