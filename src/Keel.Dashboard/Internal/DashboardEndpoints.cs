using System.Net;
using Keel.Dashboard.Pages;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Keel.Dashboard.Internal;

/// <summary>The dashboard's routes, and the checks every request passes before a page or an action runs.</summary>
internal static class DashboardEndpoints
{
    public static void Map(RouteGroupBuilder group, KeelDashboardOptions options, string prefix)
    {
        group.MapGet("/", Handle(options, prefix, OverviewPage.RenderAsync));
        group.MapGet("/queues", Handle(options, prefix, QueuesPage.RenderAsync));
        group.MapGet("/jobs/{state}", Handle(options, prefix, JobsPage.RenderAsync));
        group.MapGet("/job/{id}", Handle(options, prefix, JobPage.RenderAsync));
        group.MapGet("/job/{id}/args", Handle(options, prefix, JobPage.ArgsAsync));
        group.MapGet("/batches", Handle(options, prefix, BatchesPage.RenderAsync));
        group.MapGet("/batch/{id}", Handle(options, prefix, BatchesPage.RenderBatchAsync));
        group.MapGet("/processes", Handle(options, prefix, ProcessesPage.RenderAsync));
        group.MapGet("/recurring", Handle(options, prefix, RecurringPage.RenderAsync));
        group.MapGet("/assets/{name}", Handle(options, prefix, d => Assets.ServeAsync(d.Http, d.Http.GetRouteValue("name") as string ?? string.Empty)));
        group.MapPost("/actions/{action}", Handle(options, prefix, Actions.HandleAsync));
    }

    private static RequestDelegate Handle(KeelDashboardOptions options, string prefix, Func<DashboardContext, Task> handler) => async http =>
    {
        var context = new DashboardContext(http, options, prefix);
        if (options.AuthorizationPolicy is null && !IsLoopback(http.Connection.RemoteIpAddress))
        {
            // Without an authorization policy nobody is authenticated: only someone on this machine may look.
            await context.WriteErrorAsync(StatusCodes.Status403Forbidden, "The Keel dashboard answers only requests from this machine (loopback). To open it to others, configure an authorization policy: MapKeelDashboard(\"/keel\", o => o.AuthorizationPolicy = \"…\").");
            return;
        }

        try
        {
            if (HttpMethods.IsPost(http.Request.Method))
            {
                if (options.ReadOnly)
                {
                    throw new DashboardException(StatusCodes.Status403Forbidden, "This dashboard is read-only: it changes nothing.");
                }

                await ValidateAntiforgeryAsync(http);
            }

            await handler(context);
        }
        catch (DashboardException e)
        {
            await context.WriteErrorAsync(e.Status, e.Message);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The browser went away; nobody is left to answer.
        }
        catch (Exception e)
        {
            http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Keel.Dashboard").LogError(e, "Keel dashboard request {Path} failed", http.Request.Path.Value);
            await context.WriteErrorAsync(StatusCodes.Status500InternalServerError, "The request failed: " + e.Message);
        }
    };

    private static async Task ValidateAntiforgeryAsync(HttpContext http)
    {
        var antiforgery = http.RequestServices.GetRequiredService<IAntiforgery>();
        try
        {
            await antiforgery.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            throw new DashboardException(StatusCodes.Status400BadRequest, "This form did not come from this dashboard, or it expired (missing or invalid antiforgery token). Reload the page and try again.");
        }
    }

    /// <summary>True for 127.0.0.0/8 and ::1 (also as an IPv4-mapped IPv6 address); false when unknown.</summary>
    internal static bool IsLoopback(IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return IPAddress.IsLoopback(address);
    }
}
