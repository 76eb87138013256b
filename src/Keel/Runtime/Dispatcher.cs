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

    private async Task LoopAsync(CancellationToken stoppingToken)
    {
        var errorDelay = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (await _registration.HandleLostAsync(_onPruned, stoppingToken))
                {
                    return;
                }

                var moved = await RunOnceAsync(stoppingToken);
                errorDelay = TimeSpan.FromMilliseconds(100);
                if (moved >= _options.BatchSize)
                {
                    continue; // A full batch: there may be more due right now.
                }

                await Task.Delay(_options.PollingInterval, _clock.TimeProvider, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.DispatcherError(_logger, e, errorDelay);
                await Task.Delay(errorDelay, stoppingToken);
                errorDelay = TimeSpan.FromTicks(Math.Min(errorDelay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }

    /// <summary>One pass: moves up to a batch of due jobs and wakes local workers if any moved.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var moved = await StorageRetry.RunAsync(
            _storage,
            _logger,
            "dispatch scheduled jobs",
            ct => _storage.ScheduledDispatchAsync(new ScheduledDispatchParams(_options.BatchSize, _clock.StorageNow), ct),
            cancellationToken);
        // Limits repair themselves here: expired permits are recomputed from the jobs that really hold them.
        var promoted = await StorageRetry.RunAsync(
            _storage,
            _logger,
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
