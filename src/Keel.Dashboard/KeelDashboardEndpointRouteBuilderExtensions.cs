using System.Net;
using Keel.Dashboard.Internal;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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
        else
        {
            WarnWhenListeningBeyondLoopback(endpoints.ServiceProvider, normalized);
        }

        return group;
    }

    /// <summary>
    /// Without a policy only loopback requests are served: a server bound to every interface (<c>0.0.0.0</c>) would
    /// start as if others could use it and answer them 403. Say so once, when the server has started.
    /// </summary>
    private static void WarnWhenListeningBeyondLoopback(IServiceProvider services, string prefix)
    {
        if (services.GetService<IHostApplicationLifetime>() is not { } lifetime || services.GetService<IServer>() is not { } server)
        {
            return;
        }

        lifetime.ApplicationStarted.Register(() =>
        {
            var open = (server.Features.Get<IServerAddressesFeature>()?.Addresses ?? []).Where(a => !IsLoopbackUrl(a)).ToList();
            if (open.Count > 0)
            {
                services.GetService<ILoggerFactory>()?.CreateLogger("Keel.Dashboard").LogWarning(
                    "The Keel dashboard at {Prefix} listens on {Addresses}, but without an authorization policy it answers only requests from this machine (loopback): other machines get 403. To serve them, mount it in an application with a policy, MapKeelDashboard(\"/keel\", o => o.AuthorizationPolicy = \"…\") (keel dashboard has no authentication; see docs/dashboard.md)",
                    prefix,
                    string.Join(", ", open));
            }
        });
    }

    /// <summary>True for an address only this machine can reach: localhost, 127.0.0.0/8, ::1.</summary>
    internal static bool IsLoopbackUrl(string url)
    {
        if (!Uri.TryCreate(url.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri))
        {
            return false;
        }

        return uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
    }
}
