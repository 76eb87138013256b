using System.Diagnostics;
using System.Text.Json;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// One worker: a process row, up to <see cref="WorkerOptions.Threads"/> jobs at a time, claimed in one
/// transaction per queue entry and finalized under their claims.
/// </summary>
internal sealed class Worker
{
    private readonly IKeelStorage _storage;
    private readonly JobExecutor _executor;
    private readonly JobSignal _signal;
    private readonly KeelOptions _options;
    private readonly WorkerOptions _worker;
    private readonly IReadOnlyList<QueueFilter> _queues;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly Wakeup _wakeup = new();
    private readonly Dictionary<long, Task> _running = [];
    private readonly Lock _runningGate = new();
    private CancellationTokenSource _jobsCancellation = new();
    private readonly ProcessRegistration _registration;
    private readonly Action? _onPruned;
    private Completer? _completer;
    private long _lostProcessId;
    private int _reserved; // Slots promised to a claim made along with a completion batch, not yet filled.
    private volatile bool _claiming;

    // onPruned, in process mode: what to do instead of registering anew when this worker learns it was pruned
    // (stop the process, so its supervisor starts a fresh one). Null in in-process mode.
    public Worker(IKeelStorage storage, JobExecutor executor, JobSignal signal, KeelOptions options, WorkerOptions worker, ILogger logger, KeelClock clock, ProcessIdentityInfo? identity = null, Action? onPruned = null)
    {
        _storage = storage;
        _executor = executor;
        _signal = signal;
        _options = options;
        _worker = worker;
        _queues = [.. worker.EffectiveQueues.Select(QueueFilter.Parse)];
        _logger = logger;
        _clock = clock;
        _onPruned = onPruned;
        _registration = new ProcessRegistration(storage, options, logger, clock, identity ?? ProcessIdentityInfo.New("Worker"), Metadata);
        _registration.Lost += id =>
        {
            Interlocked.Exchange(ref _lostProcessId, id);
            _wakeup.Set();
        };
    }

    public string Name => _registration.Name;

    /// <summary>The current process row id; 0 before registration.</summary>
    public long ProcessId => _registration.Id;

    public int RunningCount
    {
        get
        {
            lock (_runningGate)
            {
                return _running.Count;
            }
        }
    }

    private int FreeSlots
    {
        get
        {
            lock (_runningGate)
            {
                return _worker.Threads - _running.Count - _reserved;
            }
        }
    }

    /// <summary>
    /// Registers, then claims and runs jobs until <paramref name="stoppingToken"/> is cancelled; then stops claiming,
    /// lets running jobs finish for <see cref="KeelOptions.ShutdownTimeout"/>, cancels the rest, releases their
    /// claims and deregisters.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        _signal.Subscribe(_wakeup);
        _completer = new Completer(_storage, _logger, _clock, _options.PreserveFinishedJobs)
        {
            BatchWritten = _wakeup.Set,
            ClaimAlong = ClaimAlong,
            ClaimedAlong = ClaimedAlong,
        };
        // The heartbeat outlives the stop request: a worker draining its jobs must not look dead.
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = Task.Run(() => _registration.HeartbeatAsync(heartbeatStop.Token), CancellationToken.None);
        try
        {
            await _registration.RegisterAsync(stoppingToken);
            Log.WorkerStarted(_logger, Name, ProcessId, string.Join(',', _worker.EffectiveQueues), _worker.Threads);
            _claiming = true;
            using var stopClaiming = stoppingToken.Register(() => _claiming = false);
            await LoopAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _signal.Unsubscribe(_wakeup);
            await ShutdownAsync();
            await heartbeatStop.CancelAsync();
            await heartbeat;
        }
    }

    /// <summary>Claims once, up to the free slots, and starts the claimed jobs. Returns how many were claimed.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var free = FreeSlots;
        var claimedTotal = 0;
        foreach (var queue in _queues)
        {
            if (free <= 0)
            {
                break;
            }

            var claimed = await StorageRetry.RunAsync(
                _storage,
                _logger,
                "claim jobs",
                ct => _storage.JobsClaimAsync(new JobsClaimParams(ProcessId, queue, free, _clock.StorageNow), ct),
                cancellationToken);
            foreach (var job in claimed)
            {
                RecordClaimed(job);
                Start(job);
            }

            free -= claimed.Count;
            claimedTotal += claimed.Count;
        }

        return claimedTotal;
    }

    private async Task LoopAsync(CancellationToken stoppingToken)
    {
        var errorDelay = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            _wakeup.Reset();
            var lost = Interlocked.Exchange(ref _lostProcessId, 0);
            var pruned = lost != 0 && lost == ProcessId;
            var full = true;
            if (!pruned)
            {
                try
                {
                    var free = FreeSlots;
                    if (free > 0)
                    {
                        full = await RunOnceAsync(stoppingToken) == free;
                        if (full)
                        {
                            continue; // There may be more: look again as soon as a slot is free.
                        }
                    }

                    errorDelay = TimeSpan.FromMilliseconds(100);
                }
                catch (ProcessGoneException)
                {
                    pruned = true;
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    Log.WorkerLoopError(_logger, e, Name, errorDelay);
                    await Task.Delay(errorDelay, stoppingToken);
                    errorDelay = TimeSpan.FromTicks(Math.Min(errorDelay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
                    continue;
                }
            }

            if (pruned)
            {
                try
                {
                    await RecoverFromPruneAsync(stoppingToken);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    Log.WorkerLoopError(_logger, e, Name, errorDelay);
                    await Task.Delay(errorDelay, stoppingToken);
                }

                continue;
            }

            // Idle: a local enqueue, a finishing job (when full) or a lost heartbeat sets the wakeup; else poll later.
            await _wakeup.WaitAsync(full ? Timeout.InfiniteTimeSpan : _worker.PollingInterval, stoppingToken);
        }
    }

    /// <summary>
    /// The claim to make in the round trip that writes a batch of completions: the slots the batch frees plus any
    /// idle ones, reserved until <see cref="ClaimedAlong"/>, from the first queue entry (the loop serves the others
    /// when that one runs dry). None while stopping, or once the registration may have been lost.
    /// </summary>
    private JobsClaimParams? ClaimAlong(long processId, int freed)
    {
        if (!_claiming || processId != ProcessId || Interlocked.Read(ref _lostProcessId) != 0)
        {
            return null;
        }

        int limit;
        lock (_runningGate)
        {
            limit = freed + Math.Max(0, _worker.Threads - _running.Count - _reserved);
            _reserved += limit;
        }

        return new JobsClaimParams(processId, _queues[0], limit, _clock.StorageNow);
    }

    private void ClaimedAlong(JobsClaimParams claim, IReadOnlyList<ClaimedJob> jobs)
    {
        lock (_runningGate)
        {
            _reserved -= claim.Limit;
            foreach (var job in jobs)
            {
                _running[job.ClaimId] = Task.CompletedTask;
            }
        }

        // When that queue ran dry the loop looks at the others: the completer wakes it after every batch.
        foreach (var job in jobs)
        {
            RecordClaimed(job);
            Launch(job);
        }
    }

    private void Start(ClaimedJob job)
    {
        // Count the slot before the job can finish, so a fast job never leaves a stale entry behind.
        lock (_runningGate)
        {
            _running[job.ClaimId] = Task.CompletedTask;
        }

        Launch(job);
    }

    private void Launch(ClaimedJob job)
    {
        var task = Task.Run(() => RunJobAsync(job));
        lock (_runningGate)
        {
            if (_running.ContainsKey(job.ClaimId))
            {
                _running[job.ClaimId] = task;
            }
        }
    }

    private static void RecordClaimed(ClaimedJob job)
    {
        if (KeelMetrics.Claimed.Enabled)
        {
            KeelMetrics.Claimed.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        }

        if (job.ReadyAt is { } readyAt && KeelMetrics.QueueLatency.Enabled)
        {
            var latency = Math.Max(0, (job.ClaimedAt - readyAt).TotalSeconds);
            KeelMetrics.QueueLatency.Record(latency, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
        }
    }

    private async Task RunJobAsync(ClaimedJob job)
    {
        var processId = ProcessId;
        using var activity = KeelTracing.StartPerform(job);
        try
        {
            var started = _clock.TimeProvider.GetTimestamp();
            var outcome = await _executor.RunAsync(job, _jobsCancellation.Token);
            if (KeelMetrics.Duration.Enabled)
            {
                KeelMetrics.Duration.Record(
                    _clock.TimeProvider.GetElapsedTime(started).TotalSeconds,
                    KeelMetrics.QueueTag(job.Queue),
                    KeelMetrics.KindTag(job.Kind),
                    new("keel.outcome", outcome.Result switch { RunResult.Succeeded => "succeeded", RunResult.Failed => "failed", _ => "interrupted" }));
            }

            switch (outcome.Result)
            {
                case RunResult.Succeeded:
                    if (await _completer!.CompleteAsync(processId, job.Ref, () => ReleaseSlot(job.ClaimId)))
                    {
                        KeelMetrics.Finished.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
                        Log.JobFinished(_logger, job.JobId, job.Kind, job.Attempt);
                    }

                    activity?.SetTag("keel.outcome", "succeeded");
                    break;
                case RunResult.Failed:
                    activity?.SetStatus(ActivityStatusCode.Error, outcome.Error?.Message);
                    activity?.SetTag("error.type", outcome.Error?.GetType().FullName);
                    activity?.SetTag("keel.outcome", "failed");
                    await FailAsync(processId, job, outcome);
                    break;
                default:
                    activity?.SetTag("keel.outcome", "interrupted");
                    Log.JobInterrupted(_logger, job.JobId, job.Kind);
                    break; // The claim is released with the rest at shutdown.
            }
        }
#pragma warning disable CA1031 // A job's failure must never take the worker down.
        catch (Exception e)
#pragma warning restore CA1031
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            Log.WorkerLoopError(_logger, e, Name, TimeSpan.Zero);
        }
        finally
        {
            if (ReleaseSlot(job.ClaimId))
            {
                _wakeup.Set();
            }
        }
    }

    // A successful job's slot comes back from the completer's loop once its completion is written, all of a
    // batch's together (then one wakeup); every other outcome gives it back here, when the run ends.
    private bool ReleaseSlot(long claimId)
    {
        lock (_runningGate)
        {
            return _running.Remove(claimId);
        }
    }

    private async Task FailAsync(long processId, ClaimedJob job, RunOutcome outcome)
    {
        var error = outcome.Error!;
        var retryAt = FailureDecision.RetryAt(outcome.Options ?? new JobOptions(), job.Attempt, job.MaxAttempts, error, _clock.UtcNow, Random.Shared.NextDouble());
        var held = await StorageRetry.RunAsync(
            _storage,
            _logger,
            "fail job",
            ct => _storage.JobFailAsync(new JobFailParams(processId, job.Ref, FailureRecord.From(error), retryAt, _clock.StorageNow), ct),
            CancellationToken.None);
        if (!held)
        {
            Log.LateResultRejected(_logger, job.JobId, job.ClaimId, processId);
            KeelMetrics.LateResultsRejected.Add(1, new KeyValuePair<string, object?>("keel.result", "failed"));
        }
        else if (retryAt is { } at)
        {
            KeelMetrics.Retried.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind));
            Log.JobRetrying(_logger, error, job.JobId, job.Kind, job.Attempt, at);
        }
        else
        {
            KeelMetrics.Failed.Add(1, KeelMetrics.QueueTag(job.Queue), KeelMetrics.KindTag(job.Kind), new("error.type", error.GetType().FullName));
            Log.JobFailed(_logger, error, job.JobId, job.Kind, job.Attempt);
        }
    }

    private string Metadata() => JsonSerializer.Serialize(new { queues = _worker.EffectiveQueues, threads = _worker.Threads, pollingIntervalMs = _worker.PollingInterval.TotalMilliseconds });

    /// <summary>
    /// Our row was pruned: someone else has recovered (or will recover) our claims, so every running job's
    /// result would be rejected. Cancel them, wait for them, and carry on under a new registration (in process
    /// mode: stop, and let the supervisor start a fresh process).
    /// </summary>
    private async Task RecoverFromPruneAsync(CancellationToken stoppingToken)
    {
        Log.ProcessPrunedWhileRunning(_logger, Name, ProcessId, RunningCount);
        var cancelled = _jobsCancellation;
        await cancelled.CancelAsync();
        await WaitForRunningAsync(Timeout.InfiniteTimeSpan);
        _jobsCancellation = new CancellationTokenSource();
        cancelled.Dispose();
        if (_onPruned is not null)
        {
            _onPruned();
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }

        await _registration.RegisterAnewAsync(stoppingToken);
    }

    private async Task ShutdownAsync()
    {
        var running = RunningCount;
        if (running > 0 && !await WaitForRunningAsync(_options.ShutdownTimeout))
        {
            Log.ShutdownTimeoutExceeded(_logger, _options.ShutdownTimeout, RunningCount);
            await _jobsCancellation.CancelAsync();
            await WaitForRunningAsync(TimeSpan.FromSeconds(5));
        }

        await _completer!.DrainAsync(TimeSpan.FromSeconds(10));
        var released = 0;
        try
        {
            released = await _registration.DeregisterAsync(TimeSpan.FromSeconds(10));
        }
#pragma warning disable CA1031 // Shutdown goes on: the row is pruned and its claims recovered by maintenance.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.WorkerLoopError(_logger, e, Name, TimeSpan.Zero);
        }

        Log.WorkerStopped(_logger, Name, ProcessId, released);
        _jobsCancellation.Dispose();
    }

    private async Task<bool> WaitForRunningAsync(TimeSpan timeout)
    {
        Task[] tasks;
        lock (_runningGate)
        {
            tasks = [.. _running.Values];
        }

        if (tasks.Length == 0)
        {
            return true;
        }

        try
        {
            await Task.WhenAll(tasks).WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
