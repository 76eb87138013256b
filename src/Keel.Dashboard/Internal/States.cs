namespace Keel.Dashboard.Internal;

/// <summary>The job states as the dashboard names them in URLs and labels.</summary>
internal static class States
{
    public static readonly IReadOnlyList<(JobState State, string Slug, string Label)> All =
    [
        (JobState.Ready, "ready", "Ready"),
        (JobState.Scheduled, "scheduled", "Scheduled"),
        (JobState.Claimed, "in-progress", "In progress"),
        (JobState.Blocked, "blocked", "Blocked"),
        (JobState.Awaiting, "awaiting", "Awaiting"),
        (JobState.Failed, "failed", "Failed"),
        (JobState.Finished, "finished", "Finished"),
        (JobState.Discarded, "discarded", "Discarded"),
    ];

    public static string Slug(JobState state) => All.First(s => s.State == state).Slug;

    public static string Label(JobState state) => All.First(s => s.State == state).Label;

    public static JobState Parse(string? slug)
        => All.FirstOrDefault(s => s.Slug == slug) is { Slug: not null } found
            ? found.State
            : throw new DashboardException(400, $"unknown job state '{slug}': use one of {string.Join(", ", All.Select(s => s.Slug))}");
}

/// <summary>A request the dashboard refuses, with the status and a sentence for the person who sent it.</summary>
internal sealed class DashboardException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
