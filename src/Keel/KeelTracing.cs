using System.Diagnostics;

namespace Keel;

/// <summary>
/// Keel's <see cref="ActivitySource"/>: an <c>enqueue {kind}</c> producer span around each enqueue, and a
/// <c>perform {kind}</c> consumer span around each run, linked to the enqueuer's trace context stored with the job.
/// </summary>
public static class KeelTracing
{
    /// <summary>The activity source name to subscribe to (<c>Keel</c>).</summary>
    public const string SourceName = "Keel";

    internal static readonly ActivitySource Source = new(SourceName, typeof(KeelTracing).Assembly.GetName().Version?.ToString());

    /// <summary>The W3C <c>traceparent</c> of <paramref name="activity"/>, or null when it has none.</summary>
    internal static string? TraceParentOf(Activity? activity)
        => activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;

    /// <summary>Starts the perform span of a claimed job, linked to its stored enqueue context; null when nobody listens.</summary>
    internal static Activity? StartPerform(Storage.ClaimedJob job)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        ActivityLink[]? links = null;
        if (job.TraceParent is { } parent && ActivityContext.TryParse(parent, null, isRemote: true, out var context))
        {
            links = [new ActivityLink(context)];
        }

        // Each run is its own trace (a job may run long after, and more than once); the link leads to the enqueuer.
        Activity.Current = null;
        var activity = Source.StartActivity(ActivityKind.Consumer, default(ActivityContext), null, links, default, "perform " + job.Kind);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("keel.job.id", job.JobId);
            activity.SetTag("keel.kind", job.Kind);
            activity.SetTag("keel.queue", job.Queue);
            activity.SetTag("keel.attempt", job.Attempt);
            activity.SetTag("messaging.system", "keel");
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.destination.name", job.Queue);
        }

        return activity;
    }
}
