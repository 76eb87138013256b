using Keel.Storage;

namespace Keel.Dashboard.Internal;

/// <summary>
/// A job list's filter as the browser sends it (query string or form fields): queue, kind, error type and a time
/// range — the failure time for failed jobs, the enqueue time otherwise. Values reach storage only as parameters.
/// </summary>
internal sealed record JobQuery(JobState State, string? Queue, string? Kind, string? ErrorType, DateTimeOffset? From, DateTimeOffset? To, string? FromText, string? ToText)
{
    public static JobQuery Parse(JobState state, Func<string, string?> value)
    {
        var fromText = value("from");
        var toText = value("to");
        var query = new JobQuery(state, value("queue"), value("kind"), value("error"), DashboardContext.ParseTime(fromText, "from"), DashboardContext.ParseTime(toText, "to"), fromText, toText);
        if (query.ErrorType is not null && state != JobState.Failed)
        {
            throw new DashboardException(400, "the error type filter applies to failed jobs only");
        }

        return query;
    }

    public bool IsFiltered => Queue is not null || Kind is not null || ErrorType is not null || From is not null || To is not null;

    public JobFilter Filter => State == JobState.Failed
        ? new JobFilter(Queue, Kind, ErrorType, From, To)
        : new JobFilter(Queue, Kind);

    public JobsListParams List(long? beforeId, int limit) => State == JobState.Failed
        ? new JobsListParams(State, Filter, null, null, beforeId, limit)
        : new JobsListParams(State, Filter, To, From, beforeId, limit);

    /// <summary>The filter as (name, value) pairs, for links and hidden form fields.</summary>
    public (string Name, string? Value)[] Fields =>
        [("queue", Queue), ("kind", Kind), ("error", ErrorType), ("from", FromText), ("to", ToText)];

    /// <summary>"queue = mail, kind = emails.welcome", or "no filter".</summary>
    public string Describe()
    {
        var parts = new List<string>();
        if (Queue is not null)
        {
            parts.Add($"queue = {Queue}");
        }

        if (Kind is not null)
        {
            parts.Add($"kind = {Kind}");
        }

        if (ErrorType is not null)
        {
            parts.Add($"error type = {ErrorType}");
        }

        var time = State == JobState.Failed ? "failed" : "enqueued";
        if (From is { } from)
        {
            parts.Add($"{time} at or after {Format.Time(from)}");
        }

        if (To is { } to)
        {
            parts.Add($"{time} before {Format.Time(to)}");
        }

        return parts.Count == 0 ? "no filter" : string.Join(", ", parts);
    }
}
