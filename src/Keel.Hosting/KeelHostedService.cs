using Keel.Registry;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keel.Hosting;

/// <summary>
/// In-process mode: checks the schema and job kinds at start, then runs the configured workers and the
/// dispatcher until the host stops, and stops them gracefully within the host's shutdown timeout.
/// </summary>
internal sealed class KeelHostedService(
    IKeelStorage storage,
    JobRegistry registry,
    JobExecutor executor,
    JobSignal signal,
    KeelOptions options,
    ILoggerFactory loggerFactory,
    KeelClock clock) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _loops = [];

    public IReadOnlyList<Worker> Workers { get; private set; } = [];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var registryErrors = registry.Validate();
        if (registryErrors.Count > 0)
        {
            throw new InvalidOperationException("Keel job options are invalid: " + string.Join("; ", registryErrors));
        }

        await SchemaGate.EnsureAsync(storage, options.AutoMigrate, loggerFactory.CreateLogger("Keel.Schema"), cancellationToken);
        if (!options.ProcessJobs)
        {
            return;
        }

        var workers = options.EffectiveWorkers
            .Select(w => new Worker(storage, executor, signal, options, w, loggerFactory.CreateLogger("Keel.Worker"), clock))
            .ToList();
        Workers = workers;
        foreach (var worker in workers)
        {
            _loops.Add(Task.Run(() => worker.RunAsync(_stopping.Token), CancellationToken.None));
        }

        if (options.RunMaintenance)
        {
            var maintenance = new Maintenance(storage, options, loggerFactory.CreateLogger("Keel.Maintenance"), clock, () => workers.Select(w => w.ProcessId).ToHashSet());
            _loops.Add(Task.Run(() => maintenance.RunAsync(_stopping.Token), CancellationToken.None));
        }

        if (options.Dispatcher.Enabled)
        {
            var dispatcher = new Dispatcher(storage, signal, options.Dispatcher, loggerFactory.CreateLogger("Keel.Dispatcher"), clock);
            _loops.Add(Task.Run(() => dispatcher.RunAsync(_stopping.Token), CancellationToken.None));
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
}
