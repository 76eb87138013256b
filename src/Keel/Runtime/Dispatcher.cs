using System.Text.Json;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>Moves due scheduled jobs (delayed enqueues and retries after backoff) to ready, a batch at a time.</summary>
internal sealed class Dispatcher
{
    private readonly IKeelStorage _storage;
    private readonly JobSignal _signal;
    private readonly DispatcherOptions _options;
    private readonly ILogger _logger;
    private readonly KeelClock _clock;
    private readonly ProcessRegistration _registration;
    private readonly Action? _onPruned;

    public Dispatcher(IKeelStorage storage, JobSignal signal, KeelOptions options, ILogger logger, KeelClock clock, ProcessIdentityInfo? identity = null, Action? onPruned = null)
    {
        _storage = storage;
        _signal = signal;
        _options = options.Dispatcher;
        _logger = logger;
        _clock = clock;
        _onPruned = onPruned;
        _registration = new ProcessRegistration(storage, options, logger, clock, identity ?? ProcessIdentityInfo.New("Dispatcher"), () => JsonSerializer.Serialize(new { batchSize = _options.BatchSize, pollingIntervalMs = _options.PollingInterval.TotalMilliseconds }));
    }

    /// <summary>The current process row id; 0 before registration.</summary>
    public long ProcessId => _registration.Id;

    public Task RunAsync(CancellationToken stoppingToken)
        => _registration.RunAsync(LoopAsync, e => Log.DispatcherError(_logger, e, TimeSpan.Zero), stoppingToken);

    private Task LoopAsync(CancellationToken stoppingToken)
        => Poller.RunAsync(PassAsync, _registration.Outage, "dispatch scheduled jobs", _clock.TimeProvider, null, stoppingToken);

    private async Task<TimeSpan> PassAsync(CancellationToken stoppingToken)
    {
        if (await _registration.HandleLostAsync(_onPruned, stoppingToken))
        {
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }

        var moved = await RunOnceAsync(stoppingToken);
        return moved >= _options.BatchSize ? TimeSpan.Zero : _options.PollingInterval; // A full batch: there may be more due now.
    }

    /// <summary>One pass: moves up to a batch of due jobs and wakes local workers if any moved.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var moved = await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "dispatch scheduled jobs",
            ct => _storage.ScheduledDispatchAsync(new ScheduledDispatchParams(_options.BatchSize, _clock.StorageNow), ct),
            cancellationToken);
        // Limits repair themselves here: expired permits are recomputed from the jobs that really hold them.
        var promoted = await StorageRetry.RunAsync(
            _storage,
            _registration.Outage,
            "concurrency maintenance",
            ct => _storage.ConcurrencyMaintainAsync(new ConcurrencyMaintainParams(_options.BatchSize, _clock.StorageNow), ct),
            cancellationToken);
        if (moved > 0 || promoted > 0)
        {
            Log.ScheduledDispatched(_logger, moved);
            Log.BlockedPromoted(_logger, promoted);
            _signal.Notify();
        }

        return moved;
    }
}
