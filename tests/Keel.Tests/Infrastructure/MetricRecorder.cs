using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Keel.Tests.Infrastructure;

/// <summary>Records every measurement of one Keel instrument while it lives (the listener is process-wide).</summary>
public sealed class MetricRecorder : IDisposable
{
    private readonly MeterListener _listener = new();

    public MetricRecorder(string instrument)
    {
        _listener.InstrumentPublished = (i, listener) =>
        {
            if (i.Meter.Name == KeelMetrics.MeterName && i.Name == instrument)
            {
                listener.EnableMeasurementEvents(i);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            Measurements.Enqueue((value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value?.ToString()))));
        _listener.Start();
    }

    public ConcurrentQueue<(long Value, Dictionary<string, string?> Tags)> Measurements { get; } = new();

    public long Sum(string tag, string value) => Measurements.Where(m => m.Tags.GetValueOrDefault(tag) == value).Sum(m => m.Value);

    public void Dispose() => _listener.Dispose();
}
