using System.Globalization;
using System.Text.Json;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Hosting.Supervision;

/// <summary>
/// Process mode's supervisor: starts each configured worker process and the dispatcher as a child OS process,
/// recovers a child's claims the moment it exits and starts a replacement, kills children that never register
/// or that live on without a row, runs maintenance, and on stop forwards the signal and waits for its children.
/// </summary>
internal sealed class Supervisor
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);
    private readonly IKeelStorage _storage;
    private readonly KeelOptions _options;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly IReadOnlyList<string> _forwardedArgs;
    private readonly List<ChildProcess> _children = [];
    private readonly Dictionary<ChildSpec, int> _failures = [];
    private readonly Wakeup _wakeup = new();
    private readonly ProcessRegistration _registration;
    private readonly Maintenance _maintenance;
    private readonly ILoggerFactory _loggerFactory;

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
        using var heartbeatStop = new CancellationTokenSource();
        var heartbeat = Task.Run(() => _registration.HeartbeatAsync(heartbeatStop.Token), CancellationToken.None);
        _registration.Lost += OnLost;
        void OnLost(long lostId) => _ = ReRegisterAsync(stopping);
        // Telemetry: probes on the configured local port, and the snapshot the observable gauges report.
        await using var health = _options.HealthCheckPort is { } port ? HealthEndpoint.Start(_storage, _options, _clock, _loggerFactory.CreateLogger("Keel.Health"), port) : null;
        var telemetry = Task.Run(() => new TelemetrySnapshotRefresher(_storage, _options, _loggerFactory.CreateLogger("Keel.Telemetry"), _clock).RunAsync(heartbeatStop.Token), CancellationToken.None);
        try
        {
            await _registration.RegisterAsync(stopping);
            var nextMaintenance = 0L;
            while (!stopping.IsCancellationRequested && !immediate.IsCancellationRequested)
            {
                _wakeup.Reset();
                try
                {
                    await SuperviseOnceAsync(stopping);
                }
                catch (Exception e) when (!stopping.IsCancellationRequested)
                {
                    // The database may be down: keep watching children; maintenance recovers what this pass could not.
                    Log.SupervisorError(_logger, e);
                }

                if (_clock.TimeProvider.GetTimestamp() >= nextMaintenance)
                {
                    await RunMaintenanceAsync(stopping);
                    nextMaintenance = _clock.TimeProvider.GetTimestamp() + (long)(_maintenance.Cadence.TotalSeconds * _clock.TimeProvider.TimestampFrequency);
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
            if (immediate.IsCancellationRequested)
            {
                SignalAll(Posix.SIGQUIT);
            }
            else
            {
                await StopChildrenAsync();
            }

            await heartbeatStop.CancelAsync();
            await heartbeat;
            await telemetry;
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

    /// <summary>One pass over the children: reap and replace the dead, kill the stuck and the unregistered.</summary>
    internal async Task SuperviseOnceAsync(CancellationToken cancellationToken)
    {
        foreach (var child in _children.Where(c => c.Process.HasExited && !c.Handled).ToList())
        {
            await ReapAsync(child, cancellationToken);
        }

        _children.RemoveAll(c => c.Handled);
        if (cancellationToken.IsCancellationRequested)
        {
            return;
        }

        foreach (var spec in Specs.GroupBy(s => s).SelectMany(g => Enumerable.Repeat(g.Key, g.Count() - _children.Count(c => c.Spec == g.Key))))
        {
            Start(spec);
        }

        await CheckRegistrationsAsync(cancellationToken);
    }

    private void Start(ChildSpec spec)
    {
        var name = ProcessIdentity.NewName(spec.Kind.ToString());
        var process = ChildProcess.Launch(spec, name, _registration.Id, _forwardedArgs);
        process.Exited += (_, _) => _wakeup.Set();
        _children.Add(new ChildProcess(spec, name, process, _clock.TimeProvider.GetTimestamp()));
        Log.ChildStarted(_logger, spec.ToString(), name, process.Id);
    }

    /// <summary>A child exited: recover whatever its row still holds, at once, naming how it ended.</summary>
    private async Task ReapAsync(ChildProcess child, CancellationToken cancellationToken)
    {
        child.Handled = true;
        var exitCode = child.Process.ExitCode;
        var how = Posix.DescribeExit(exitCode);
        if (exitCode == 0)
        {
            Log.ChildStopped(_logger, child.Spec.ToString(), child.Name, child.Pid);
        }
        else
        {
            Log.ChildExited(_logger, child.Spec.ToString(), child.Name, child.Pid, how);
        }

        var row = (await _storage.ProcessesListAsync(new ProcessesListParams(null, _clock.StorageNow), CancellationToken.None)).FirstOrDefault(p => p.Name == child.Name);
        if (row is not null)
        {
            var cause = new WorkerLostCause("process-exited", string.Create(CultureInfo.InvariantCulture, $"process exited: {child.Spec} {child.Name} (pid {child.Pid} on {row.Hostname}) {how}"));
            var recovery = await StorageRetry.RunAsync(
                _storage,
                _logger,
                "recover exited child",
                ct => _storage.ProcessRecoverAsync(new ProcessRecoverParams(row.Id, null, cause, _clock.StorageNow), ct),
                CancellationToken.None);
            if (recovery is not null)
            {
                Log.ProcessPruned(_logger, row.Name, row.Id, cause.Code, recovery.Retried, recovery.Failed, cause.Description);
                KeelMetrics.RecordRecovery(cause.Code, recovery);
            }
        }

        // A child that keeps dying young is restarted with growing pauses, not in a tight loop.
        var lived = _clock.TimeProvider.GetElapsedTime(child.StartedAt);
        var failures = exitCode == 0 || lived > TimeSpan.FromSeconds(30) ? 0 : _failures.GetValueOrDefault(child.Spec) + 1;
        _failures[child.Spec] = failures;
        if (failures > 1 && !cancellationToken.IsCancellationRequested)
        {
            var pause = TimeSpan.FromMilliseconds(Math.Min(250 * Math.Pow(2, failures - 2), 10_000));
            await Task.Delay(pause, cancellationToken);
        }
    }

    /// <summary>Kills a child that never registered in time, or whose row vanished while it lives on (a zombie).</summary>
    private async Task CheckRegistrationsAsync(CancellationToken cancellationToken)
    {
        if (_children.Count == 0)
        {
            return;
        }

        var rows = (await _storage.ProcessesListAsync(new ProcessesListParams(null, _clock.StorageNow), cancellationToken)).ToDictionary(p => p.Name);
        var now = _clock.TimeProvider.GetTimestamp();
        foreach (var child in _children.Where(c => !c.Process.HasExited))
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

    private async Task RunMaintenanceAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _maintenance.RunDueAsync(cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            Log.MaintenanceError(_logger, e, _maintenance.Cadence);
        }
    }

    /// <summary>Graceful stop: SIGTERM to every child, wait for them (shutdown timeout plus a margin), then SIGKILL.</summary>
    private async Task StopChildrenAsync()
    {
        Log.SupervisorStopping(_logger, "SIGTERM", _children.Count(c => !c.Process.HasExited));
        SignalAll(Posix.SIGTERM);
        var deadline = _options.ShutdownTimeout + TimeSpan.FromSeconds(10);
        var waits = _children.Where(c => !c.Handled).Select(c => c.Process.WaitForExitAsync());
        try
        {
            await Task.WhenAll(waits).WaitAsync(deadline);
        }
        catch (TimeoutException)
        {
            SignalAll(Posix.SIGKILL);
            await Task.WhenAll(_children.Select(c => c.Process.WaitForExitAsync())).WaitAsync(TimeSpan.FromSeconds(5));
        }

        foreach (var child in _children.Where(c => !c.Handled).ToList())
        {
            try
            {
                await ReapAsync(child, CancellationToken.None);
            }
#pragma warning disable CA1031 // Keep reaping the others; maintenance elsewhere covers what is left.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Log.SupervisorError(_logger, e);
            }
        }
    }

    private void SignalAll(int signal)
    {
        foreach (var child in _children.Where(c => !c.Process.HasExited))
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
}
