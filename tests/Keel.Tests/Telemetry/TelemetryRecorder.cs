using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Keel.Tests.Telemetry;

/// <summary>Records every measurement of every Keel instrument (long and double) while it lives.</summary>
public sealed class InstrumentRecorder : IDisposable
{
    private readonly MeterListener _listener = new();

    public InstrumentRecorder()
    {
        _listener.InstrumentPublished = (i, listener) =>
        {
            if (i.Meter.Name == KeelMetrics.MeterName)
            {
                listener.EnableMeasurementEvents(i);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Add(i, value, tags));
        _listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Add(i, value, tags));
        _listener.Start();
    }

    public ConcurrentQueue<(string Instrument, string? Unit, double Value, Dictionary<string, string?> Tags)> Measurements { get; } = new();

    public IEnumerable<(double Value, Dictionary<string, string?> Tags)> Of(string instrument, string queue)
        => Measurements.Where(m => m.Instrument == instrument && m.Tags.GetValueOrDefault("keel.queue") == queue).Select(m => (m.Value, m.Tags));

    public double Sum(string instrument, string queue) => Of(instrument, queue).Sum(m => m.Value);

    public string? UnitOf(string instrument) => Measurements.FirstOrDefault(m => m.Instrument == instrument).Unit;

    public void RecordObservables() => _listener.RecordObservableInstruments();

    public void Dispose() => _listener.Dispose();

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        => Measurements.Enqueue((instrument.Name, instrument.Unit, value, tags.ToArray().ToDictionary(t => t.Key, t => t.Value?.ToString())));
}

/// <summary>Records every stopped activity of the Keel source (and of the test's own source) while it lives.</summary>
public sealed class ActivityRecorder : IDisposable
{
    public const string TestSourceName = "Keel.Tests";

    private readonly ActivityListener _listener;

    public ActivityRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is KeelTracing.SourceName or TestSourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = Stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public ConcurrentQueue<Activity> Stopped { get; } = new();

    /// <summary>
    /// The span of this job. Tests run in parallel, each on its own database, so job ids repeat across tests: give
    /// the test's own queue to tell them apart.
    /// </summary>
    public Activity? Find(string name, long jobId, string? queue = null)
        => Stopped.FirstOrDefault(a => a.DisplayName == name && Equals(a.GetTagItem("keel.job.id"), jobId)
            && (queue is null || Equals(a.GetTagItem("keel.queue"), queue)));

    public void Dispose() => _listener.Dispose();
}
