using System.Globalization;
using System.Text.Json;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Hosting.Supervision;

/// <summary>
/// Process mode's supervisor: starts each configured worker process, the dispatcher and the scheduler as child OS
/// processes, and never blocks on one of them. Each child's exit is reaped the moment it happens, on its own task: its
/// claims are recovered at once (retried while the database is away), charged by how it ended, and its replacement is
/// started after a pause of its own when it keeps dying young. Maintenance runs on its own rhythm beside it. On stop it
/// forwards the signal and waits for its children within the stop budget.
/// </summary>
internal sealed class Supervisor
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);

    /// <summary>A registered child that lived longer than this was not crash-looping.</summary>
    private static readonly TimeSpan QuickExit = TimeSpan.FromSeconds(1);

    /// <summary>The longest pause before restarting a child that keeps dying young.</summary>
    private static readonly TimeSpan MaxRestartPause = TimeSpan.FromSeconds(30);

    /// <summary>From this many quick exits in a row on, each restart is logged as a crash loop.</summary>
    private const int CrashLoopExits = 5;

    private readonly IKeelStorage _storage;
    private readonly KeelOptions _options;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly IReadOnlyList<string> _forwardedArgs;
    private readonly Lock _gate = new();
    private readonly List<ChildProcess> _children = [];
    private readonly List<Task> _reaps = [];
    private readonly Dictionary<ChildSpec, RestartState> _restarts = [];
    private readonly Wakeup _wakeup = new();
    private readonly ProcessRegistration _registration;
    private readonly Maintenance _maintenance;
    private readonly ILoggerFactory _loggerFactory;
    private readonly CancellationTokenSource _reapAbort = new();
    private volatile bool _stopping;
    private volatile bool _quitting;

    public Supervisor(IKeelStorage storage, KeelOptions options, ILoggerFactory loggerFactory, KeelClock clock, IReadOnlyList<string> forwardedArgs)
    {
        _storage = storage;
        _options = options;
        _logger = loggerFactory.CreateLogger("Keel.Supervisor");
        _loggerFactory = loggerFactory;
        _clock = clock;
        _forwardedArgs = forwardedArgs;
        Specs = [.. BuildSpecs(options)];
        _registration = new ProcessRegistration(storage, options, _logger, clock, ProcessIdentityInfo.New("Supervisor"), () => JsonSerializer.Serialize(new { children = Specs.Select(s => s.ToString()) }));
        _maintenance = new Maintenance(storage, options, loggerFactory.CreateLogger("Keel.Maintenance"), clock, () => new HashSet<long> { _registration.Id });
    }

    public IReadOnlyList<ChildSpec> Specs { get; }

    /// <summary>
    /// Supervises until <paramref name="stopping"/> (SIGTERM/SIGINT: graceful) or <paramref name="immediate"/>
    /// (SIGQUIT: children told to quit, no waiting) is cancelled. Returns the exit code.
    /// </summary>
    public async Task<int> RunAsync(CancellationToken stopping, CancellationToken immediate)
    {
        using var background = new CancellationTokenSource();
        var heartbeat = Task.Run(() => _registration.HeartbeatAsync(background.Token), CancellationToken.None);
        _registration.Lost += OnLost;
        void OnLost(long lostId) => _ = ReRegisterAsync(stopping);
        // Telemetry: probes on the configured local port, and the snapshot the observable gauges report.
        await using var health = _options.HealthCheckPort is { } port ? HealthEndpoint.Start(_storage, _options, _clock, _loggerFactory.CreateLogger("Keel.Health"), port) : null;
        var telemetry = Task.Run(() => new TelemetrySnapshotRefresher(_storage, _options, _loggerFactory.CreateLogger("Keel.Telemetry"), _clock).RunAsync(background.Token), CancellationToken.None);
        Task? maintenance = null;
        try
        {
            await _registration.RegisterAsync(stopping);
            maintenance = Task.Run(() => _maintenance.RunAsync(background.Token), CancellationToken.None);
            while (!stopping.IsCancellationRequested && !immediate.IsCancellationRequested)
            {
                _wakeup.Reset();
                StartDue();
                try
                {
                    await CheckRegistrationsAsync(stopping);
                    _registration.Outage.Succeeded();
                }
                catch (Exception e) when (!stopping.IsCancellationRequested)
                {
                    // The database may be away: children are still watched, and their exits reaped when it is back.
                    _registration.Outage.Failed(e, "watch children", Tick);
                }

                using var either = CancellationTokenSource.CreateLinkedTokenSource(stopping, immediate);
                await _wakeup.WaitAsync(Tick, either.Token);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested || immediate.IsCancellationRequested)
        {
        }
        finally
        {
            _stopping = true;
            if (immediate.IsCancellationRequested)
            {
                // SIGQUIT: exit at once, like a crash; whatever the children held is recovered as a crash's would be.
                _quitting = true;
                await _reapAbort.CancelAsync();
                SignalAll(Posix.SIGQUIT);
            }
            else
            {
                await StopChildrenAsync();
            }

            await background.CancelAsync();
            await heartbeat;
            await telemetry;
            if (maintenance is not null)
            {
                await maintenance;
            }

            if (!immediate.IsCancellationRequested)
            {
                try
                {
                    await _registration.DeregisterAsync(TimeSpan.FromSeconds(5));
                }
#pragma warning disable CA1031 // Exiting anyway; the row is pruned by maintenance elsewhere.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Log.SupervisorError(_logger, e);
                }
            }
        }

        return 0;
    }

    /// <summary>The children running now (tests).</summary>
    internal IReadOnlyList<ChildProcess> Children
    {
        get
        {
            lock (_gate)
            {
                return [.. _children];
            }
        }
    }

    /// <summary>Starts every missing child whose restart pause is over.</summary>
    private void StartDue()
    {
        if (_stopping)
        {
            return;
        }

        var now = _clock.TimeProvider.GetTimestamp();
        foreach (var group in Specs.GroupBy(s => s))
        {
            int running;
            lock (_gate)
            {
                running = _children.Count(c => c.Spec == group.Key);
                if (_restarts.TryGetValue(group.Key, out var restart) && now < restart.NextStartAt)
                {
                    continue;
                }
            }

            for (var i = running; i < group.Count(); i++)
            {
                Start(group.Key);
            }
        }
    }

    private void Start(ChildSpec spec)
    {
        var name = ProcessIdentity.NewName(spec.Kind.ToString());
        var process = ChildProcess.Launch(spec, name, _registration.Id, _forwardedArgs);
        var child = new ChildProcess(spec, name, process, _clock.TimeProvider.GetTimestamp());
        lock (_gate)
        {
            _children.Add(child);
        }

        process.Exited += (_, _) => OnExited(child);
        Log.ChildStarted(_logger, spec.ToString(), name, process.Id);
        if (process.HasExited)
        {
            OnExited(child); // It died before the handler was attached.
        }
    }

    private void OnExited(ChildProcess child)
    {
        lock (_gate)
        {
            if (child.Handled || _quitting)
            {
                return;
            }

            child.Handled = true;
            _reaps.RemoveAll(t => t.IsCompleted);
            _reaps.Add(Task.Run(() => ReapAsync(child), CancellationToken.None));
        }
    }

    /// <summary>
    /// A child exited: recover whatever its row still holds, at once and retrying while the database is away, naming how
    /// it ended; then schedule its replacement (after a pause when it keeps dying young).
    /// </summary>
    private async Task ReapAsync(ChildProcess child)
    {
        var exitCode = child.Process.ExitCode;
        var how = Posix.DescribeExit(exitCode);
        var stopped = _stopping || exitCode == 0;
        if (stopped)
        {
            Log.ChildStopped(_logger, child.Spec.ToString(), child.Name, child.Pid);
        }
        else
        {
            Log.ChildExited(_logger, child.Spec.ToString(), child.Name, child.Pid, how);
        }

        // The replacement need not wait for the recovery (which waits for the database when it is away) — unless the
        // child died young (or before this supervisor saw its row): then whether it died holding jobs (a poison job's
        // doing, which blame deals with) or holding none (a crash loop, which a pause deals with) decides its restart,
        // so it is replaced once its claims are recovered.
        var youngDeath = !stopped && (child.RowId is null || _clock.TimeProvider.GetElapsedTime(child.StartedAt) < QuickExit);
        if (!youngDeath)
        {
            ScheduleRestart(child, exitCode, diedHoldingJobs: false);
            Forget(child);
        }

        RecoveryResult? recovery = null;
        try
        {
            recovery = await RecoverAsync(child, exitCode, how, stopped);
        }
        catch (OperationCanceledException) when (_reapAbort.IsCancellationRequested)
        {
            // SIGQUIT: exiting at once; maintenance elsewhere recovers the row.
        }
#pragma warning disable CA1031 // Maintenance recovers the row once its lease expires.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.SupervisorError(_logger, e);
        }
        finally
        {
            if (youngDeath)
            {
                ScheduleRestart(child, exitCode, diedHoldingJobs: recovery is { Total: > 0 });
                Forget(child);
            }
        }
    }

    /// <summary>Takes an exited child off the list, so that the loop starts its replacement (when its pause is over).</summary>
    private void Forget(ChildProcess child)
    {
        lock (_gate)
        {
            _children.Remove(child);
        }

        _wakeup.Set();
    }

    private async Task<RecoveryResult?> RecoverAsync(ChildProcess child, int exitCode, string how, bool stopped)
    {
        var rowId = child.RowId;
        if (rowId is null)
        {
            var rows = await StorageRetry.RunAsync(_storage, _registration.Outage, "find exited child", ct => _storage.ProcessesListAsync(new ProcessesListParams(null, _clock.StorageNow), ct), _reapAbort.Token);
            rowId = rows.FirstOrDefault(p => p.Name == child.Name)?.Id;
        }

        if (rowId is null)
        {
            return null; // It never registered, or deregistered on its way out.
        }

        var (code, charge, sentence) = stopped
            ? ("stopped", RecoveryCharge.None, "stopped by its supervisor before it could release")
            : exitCode switch
            {
                WorkerExitCodes.LeaseLost => ("lease-lost", RecoveryCharge.None, "exited because it could not renew its lease while a job ran on"),
                WorkerExitCodes.JobUnresponsive => ("cancel-ignored", RecoveryCharge.Blame, "was replaced because a job did not stop when cancelled"),
                WorkerExitCodes.JobCancelled => ("cancel-escalated", RecoveryCharge.None, "was replaced because a job cancelled by an operator did not stop within its grace; its other jobs go back uncharged"),
                _ => ("process-exited", RecoveryCharge.Blame, how),
            };
        var cause = new WorkerLostCause(code, string.Create(CultureInfo.InvariantCulture, $"process {(code == "process-exited" ? "exited" : code)}: {child.Spec} {child.Name} (pid {child.Pid}) {sentence}"));
        var id = rowId.Value;
        var recovery = await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "recover exited child",
            ct => _storage.ProcessRecoverAsync(new ProcessRecoverParams([id], RecoverCondition.None, cause, _clock.StorageNow) { Charge = charge }, ct),
            _reapAbort.Token);
        if (recovery is not null)
        {
            Log.ProcessPruned(_logger, child.Name, id, cause.Code, recovery.Retried, recovery.Failed, cause.Description);
            KeelMetrics.RecordRecovery(cause.Code, recovery);
        }

        return recovery;
    }

    /// <summary>
    /// The restart policy: a child that exits cleanly, dies after it registered and ran for a while, or dies holding
    /// jobs however young (a job that killed it, an OOM kill, a kill -9) is replaced at once — blame deals with the
    /// jobs. One that keeps dying before it registers, or within a second holding no job, is crash-looping: it waits
    /// 250 ms, then twice as long each time, up to 30 s, and from the fifth such exit in a row each restart is logged as
    /// a crash loop. Each spec has its own pause; nothing else waits for it.
    /// </summary>
    private void ScheduleRestart(ChildProcess child, int exitCode, bool diedHoldingJobs)
    {
        var lived = _clock.TimeProvider.GetElapsedTime(child.StartedAt);
        var quick = exitCode != 0 && !diedHoldingJobs && (child.RowId is null || lived < QuickExit);
        TimeSpan pause;
        int failures;
        lock (_gate)
        {
            _restarts.TryGetValue(child.Spec, out var state);
            failures = quick ? (state?.QuickExits ?? 0) + 1 : 0;
            pause = failures <= 1 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(250 * Math.Pow(2, failures - 2), MaxRestartPause.TotalMilliseconds));
            _restarts[child.Spec] = new RestartState(failures, _clock.TimeProvider.GetTimestamp() + (long)(pause.TotalSeconds * _clock.TimeProvider.TimestampFrequency));
        }

        if (pause > TimeSpan.Zero && !_stopping)
        {
            Log.ChildRestartPaused(_logger, child.Spec.ToString(), pause, failures, failures >= CrashLoopExits ? ": crash loop — check its log for the cause" : string.Empty);
        }
    }

    /// <summary>Kills a child that never registered in time, or whose row vanished while it lives on (a zombie).</summary>
    private async Task CheckRegistrationsAsync(CancellationToken cancellationToken)
    {
        List<ChildProcess> children;
        lock (_gate)
        {
            children = [.. _children.Where(c => !c.Handled)];
        }

        if (children.Count == 0)
        {
            return;
        }

        var rows = (await _storage.ProcessesListAsync(new ProcessesListParams(null, _clock.StorageNow), cancellationToken)).ToDictionary(p => p.Name);
        var now = _clock.TimeProvider.GetTimestamp();
        foreach (var child in children)
        {
            if (rows.TryGetValue(child.Name, out var row))
            {
                child.RowId = row.Id;
                child.MissingSince = null;
                continue;
            }

            if (child.RowId is null)
            {
                if (_clock.TimeProvider.GetElapsedTime(child.StartedAt) > _options.ProcessStartTimeout)
                {
                    Log.ChildKilled(_logger, child.Spec.ToString(), child.Name, child.Pid, "it did not register within the start timeout");
                    Posix.Signal(child.Pid, Posix.SIGKILL);
                }

                continue;
            }

            // A pruned child notices at its next heartbeat and exits by itself; one that does not is a zombie.
            child.MissingSince ??= now;
            if (_clock.TimeProvider.GetElapsedTime(child.MissingSince.Value) > _options.AliveThreshold + (_options.HeartbeatInterval * 2))
            {
                Log.ChildKilled(_logger, child.Spec.ToString(), child.Name, child.Pid, "its process row is gone but it keeps running");
                Posix.Signal(child.Pid, Posix.SIGKILL);
            }
        }
    }

    /// <summary>Graceful stop: SIGTERM to every child, wait for them (their stop budget plus a margin), then SIGKILL.</summary>
    private async Task StopChildrenAsync()
    {
        List<ChildProcess> children;
        lock (_gate)
        {
            children = [.. _children];
        }

        Log.SupervisorStopping(_logger, "SIGTERM", children.Count(c => !c.Process.HasExited));
        SignalAll(Posix.SIGTERM);
        var deadline = _options.StopBudget + TimeSpan.FromSeconds(2);
        try
        {
            await Task.WhenAll(children.Select(c => c.Process.WaitForExitAsync())).WaitAsync(deadline);
        }
        catch (TimeoutException)
        {
            SignalAll(Posix.SIGKILL);
            try
            {
                await Task.WhenAll(children.Select(c => c.Process.WaitForExitAsync())).WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (TimeoutException)
            {
            }
        }

        foreach (var child in children)
        {
            OnExited(child);
        }

        Task[] reaps;
        lock (_gate)
        {
            reaps = [.. _reaps];
        }

        try
        {
            await Task.WhenAll(reaps).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            await _reapAbort.CancelAsync(); // The database is away: maintenance elsewhere recovers the rows.
        }
    }

    private void SignalAll(int signal)
    {
        List<ChildProcess> children;
        lock (_gate)
        {
            children = [.. _children];
        }

        foreach (var child in children.Where(c => !c.Process.HasExited))
        {
            Posix.Signal(child.Pid, signal);
        }
    }

    private async Task ReRegisterAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _registration.RegisterAnewAsync(cancellationToken);
        }
#pragma warning disable CA1031 // The next heartbeat tries again.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.SupervisorError(_logger, e);
        }
    }

    private static IEnumerable<ChildSpec> BuildSpecs(KeelOptions options)
    {
        var workers = options.EffectiveWorkers;
        for (var i = 0; i < workers.Count; i++)
        {
            for (var n = 0; n < workers[i].Processes; n++)
            {
                yield return new ChildSpec(KeelRoleKind.Worker, i);
            }
        }

        if (options.Dispatcher.Enabled)
        {
            yield return new ChildSpec(KeelRoleKind.Dispatcher, 0);
        }

        if (SchedulerOptions.ShouldRun(options))
        {
            yield return new ChildSpec(KeelRoleKind.Scheduler, 0);
        }
    }

    /// <summary>A spec's crash-loop count and when its next replacement may start (a timestamp).</summary>
    private sealed record RestartState(int QuickExits, long NextStartAt);
}
