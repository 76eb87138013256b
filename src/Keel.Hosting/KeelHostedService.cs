using Keel.Registry;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keel.Hosting;

/// <summary>
/// Runs Keel's roles inside a host. In-process mode (no <see cref="KeelRole"/>): every configured worker, the
/// dispatcher and maintenance. Process mode child: just the role its supervisor gave it. Checks the schema and
/// job kinds first, and stops everything gracefully within the host's shutdown timeout.
/// </summary>
internal sealed class KeelHostedService(
    IKeelStorage storage,
    JobRegistry registry,
    JobExecutor executor,
    JobSignal signal,
    KeelOptions options,
    ILoggerFactory loggerFactory,
    KeelClock clock,
    IHostApplicationLifetime lifetime,
    KeelRole? role) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var registryErrors = registry.Validate();
        if (registryErrors.Count > 0)
        {
            throw new InvalidOperationException("Keel job options are invalid: " + string.Join("; ", registryErrors));
        }

        // In process mode the supervisor migrates once, before any child starts; children only check.
        var migrate = options.AutoMigrate && role is null or { Kind: KeelRoleKind.Supervisor };
        // A database that is not up yet (the app and its database starting together) is waited for, up to StartupTimeout.
        await SchemaGate.EnsureAtStartAsync(storage, migrate, options.StartupTimeout, loggerFactory.CreateLogger("Keel.Schema"), clock.TimeProvider, cancellationToken);
        if (role is null or { Kind: KeelRoleKind.Supervisor })
        {
            var startLogger = loggerFactory.CreateLogger("Keel");
            foreach (var warning in await storage.StartupWarningsAsync(cancellationToken))
            {
                Log.StartupWarning(startLogger, warning);
            }
        }

        if (!options.ProcessJobs || role is { Kind: KeelRoleKind.Supervisor })
        {
            return;
        }

        if (role is not null)
        {
            StartChildRole(role);
            return;
        }

        var workers = options.EffectiveWorkers
            .Select(w => new Worker(storage, executor, signal, options, w, loggerFactory.CreateLogger("Keel.Worker"), clock, jobLogger: loggerFactory.CreateLogger("Keel.Jobs")))
            .ToList();
        foreach (var worker in workers)
        {
            Run(worker.RunAsync);
        }

        ListenForJobs();

        Dispatcher? dispatcher = null;
        if (options.Dispatcher.Enabled)
        {
            dispatcher = new Dispatcher(storage, signal, options, loggerFactory.CreateLogger("Keel.Dispatcher"), clock);
            Run(dispatcher.RunAsync);
        }

        // Like Solid Queue, a scheduler runs only when there are static tasks, unless Scheduler:Enabled says otherwise.
        Scheduler? scheduler = null;
        if (SchedulerOptions.ShouldRun(options))
        {
            scheduler = new Scheduler(storage, registry, signal, options, loggerFactory.CreateLogger("Keel.Scheduler"), clock);
            Run(scheduler.RunAsync);
        }

        if (options.RunMaintenance)
        {
            var maintenance = new Maintenance(storage, options, loggerFactory.CreateLogger("Keel.Maintenance"), clock, () =>
            {
                var own = workers.Select(w => w.ProcessId).ToHashSet();
                if (dispatcher is not null)
                {
                    own.Add(dispatcher.ProcessId);
                }

                if (scheduler is not null)
                {
                    own.Add(scheduler.ProcessId);
                }

                return own;
            });
            Run(maintenance.RunAsync);
            Run(new TelemetrySnapshotRefresher(storage, options, loggerFactory.CreateLogger("Keel.Telemetry"), clock).RunAsync);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        try
        {
            await Task.WhenAll(_loops).WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host's own shutdown timeout ran out first; whatever is still claimed is released by the
            // workers as they finish, or recovered by maintenance.
        }
        finally
        {
            _stopping.Dispose();
        }
    }

    private void StartChildRole(KeelRole child)
    {
        var identity = new ProcessIdentityInfo(child.Kind.ToString(), child.Name, child.SupervisorId);
        // A pruned child stops; its supervisor starts a fresh process rather than this one registering anew.
        void Stop() => lifetime.StopApplication();
        if (child.Kind == KeelRoleKind.Worker)
        {
            var entry = options.EffectiveWorkers[child.WorkerIndex];
            // Exiting at once is how a child stops a run that ignores its cancellation: its supervisor recovers the claims.
            Run(new Worker(storage, executor, signal, options, entry, loggerFactory.CreateLogger("Keel.Worker"), clock, identity, Stop, Supervision.Posix.ExitNow, loggerFactory.CreateLogger("Keel.Jobs")).RunAsync);
            ListenForJobs();
        }
        else if (child.Kind == KeelRoleKind.Scheduler)
        {
            Run(new Scheduler(storage, registry, signal, options, loggerFactory.CreateLogger("Keel.Scheduler"), clock, identity, Stop).RunAsync);
        }
        else
        {
            Run(new Dispatcher(storage, signal, options, loggerFactory.CreateLogger("Keel.Dispatcher"), clock, identity, Stop).RunAsync);
        }
    }

    /// <summary>Wakes this process's workers on the store's notifications (PostgreSQL LISTEN/NOTIFY), when it has them.</summary>
    private void ListenForJobs()
    {
        if (storage is IJobNotifications notifications)
        {
            Run(new NotificationListener(notifications, signal, loggerFactory.CreateLogger("Keel.Worker"), clock.TimeProvider).RunAsync);
        }
    }

    private void Run(Func<CancellationToken, Task> loop)
    {
        var token = _stopping.Token;
        _loops.Add(Task.Run(
            async () =>
            {
                try
                {
                    await loop(token);
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    // A loop that ends by throwing on the stop request has stopped; that is not a failure to report.
                }
            },
            CancellationToken.None));
    }
}
