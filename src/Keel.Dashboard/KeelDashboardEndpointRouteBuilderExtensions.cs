using Keel.Dashboard.Internal;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Dashboard;

/// <summary>Mounts the Keel dashboard in an ASP.NET Core application.</summary>
public static class KeelDashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves the dashboard under <paramref name="prefix"/>: <c>app.MapKeelDashboard("/keel")</c>. It needs
    /// <c>builder.Services.AddKeel(…)</c> (set <c>Keel:ProcessJobs</c> to false if this app should not run jobs) and
    /// <c>builder.Services.AddKeelDashboard()</c>. Without <see cref="KeelDashboardOptions.AuthorizationPolicy"/> it
    /// answers loopback requests only.
    /// </summary>
    /// <param name="endpoints">The application.</param>
    /// <param name="prefix">The URL path it lives under, e.g. <c>/keel</c>; <c>/</c> for the whole site.</param>
    /// <param name="configure">Sets this mount's options (authorization policy, read-only, argument redaction…).</param>
    /// <returns>The endpoints, for more conventions.</returns>
    /// <exception cref="InvalidOperationException">Antiforgery is not registered (<c>AddKeelDashboard</c> was not called).</exception>
    public static IEndpointConventionBuilder MapKeelDashboard(this IEndpointRouteBuilder endpoints, string prefix = "/keel", Action<KeelDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var options = new KeelDashboardOptions();
        configure?.Invoke(options);
        if (options.PageSize is < 1 or > 500)
        {
            throw new ArgumentOutOfRangeException(nameof(configure), options.PageSize, "KeelDashboardOptions.PageSize must be between 1 and 500");
        }

        if (options.CountLimit < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(configure), options.CountLimit, "KeelDashboardOptions.CountLimit must be at least 1");
        }

        if (endpoints.ServiceProvider.GetService<IAntiforgery>() is null)
        {
            throw new InvalidOperationException("The Keel dashboard guards its actions with antiforgery tokens: call builder.Services.AddKeelDashboard() before building the app.");
        }

        var normalized = "/" + prefix.Trim('/');
        var group = endpoints.MapGroup(normalized);
        DashboardEndpoints.Map(group, options, normalized == "/" ? string.Empty : normalized);
        if (options.AuthorizationPolicy is { } policy)
        {
            group.RequireAuthorization(policy);
        }

        return group;
    }
}
