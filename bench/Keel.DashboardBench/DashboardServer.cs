using Keel.Dashboard;
using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Keel.DashboardBench;

/// <summary>The dashboard as an application would mount it (AddKeel without workers, MapKeelDashboard), on a free loopback port.</summary>
internal sealed class DashboardServer(WebApplication app, string baseUrl) : IAsyncDisposable
{
    public string BaseUrl { get; } = baseUrl;

    public static async Task<DashboardServer> StartAsync(string engine, string database)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration["Keel:ProcessJobs"] = "false";
        builder.Services.AddKeel(keel =>
        {
            if (engine == "sqlite")
            {
                keel.UseSqlite(database);
            }
            else
            {
                keel.UsePostgreSql(database);
            }
        });
        builder.Services.AddKeelDashboard();
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        var app = builder.Build();
        app.MapKeelDashboard("/keel");
        await app.StartAsync();
        var root = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new DashboardServer(app, root + "/keel");
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }
}
