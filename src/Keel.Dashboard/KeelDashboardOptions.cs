namespace Keel.Dashboard;

/// <summary>How one mount of the dashboard behaves (see <see cref="KeelDashboardEndpointRouteBuilderExtensions.MapKeelDashboard"/>).</summary>
public sealed class KeelDashboardOptions
{
    /// <summary>
    /// The authorization policy every dashboard request must satisfy. When null (the default) the dashboard answers
    /// only requests from a loopback address and refuses every other one with 403.
    /// </summary>
    public string? AuthorizationPolicy { get; set; }

    /// <summary>When true, no action buttons are shown and every POST is refused with 403.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// Rewrites a job's arguments (JSON) before the job page shows them, e.g. to hide secrets:
    /// <c>(job, args) => job.Kind == "emails.welcome" ? "{ \"email\": \"***\" }" : args</c>. Null shows them as stored.
    /// </summary>
    public Func<JobInfo, string, string>? RedactArgs { get; set; }

    /// <summary>Jobs per page of a job list (1–500, default 50).</summary>
    public int PageSize { get; set; } = 50;

    /// <summary>
    /// Counts stop here and show as "10,000+": counting every row of a million-job table on each page view would
    /// cost more than the page itself (default 10,000).
    /// </summary>
    public int CountLimit { get; set; } = 10_000;

    /// <summary>How often the pages reload themselves when auto-refresh is on (default 5 s).</summary>
    public TimeSpan AutoRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);
}
