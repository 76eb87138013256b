using Keel.Dashboard.Internal;
using Keel.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Keel.Dashboard;

/// <summary>
/// The dashboard as a web server of its own (what <c>keel dashboard</c> runs): it serves the dashboard at the root
/// for the Keel services of an application that is built but never started, so it runs no jobs.
/// </summary>
public static class KeelDashboardServer
{
    /// <summary>The default address of <c>keel dashboard</c>: loopback only, like the dashboard's own default policy.</summary>
    public const string DefaultUrls = "http://127.0.0.1:5005";

    /// <summary>Builds the server (not started).</summary>
    /// <param name="keelServices">A service provider with Keel's services (<c>AddKeel</c>): the store, admin and recurring API, options.</param>
    /// <param name="urls">Where to listen, e.g. <c>http://127.0.0.1:5005</c> (port 0 picks a free one).</param>
    /// <param name="configure">Sets the dashboard's options.</param>
    /// <returns>The web application.</returns>
    public static WebApplication Create(IServiceProvider keelServices, string urls, Action<KeelDashboardOptions>? configure = null)
        => Create(keelServices, urls, configure, keysFolder: null);

    /// <summary>Builds the server (not started), keeping its data-protection keys in a folder when one is given.</summary>
    /// <param name="keelServices">A service provider with Keel's services (<c>AddKeel</c>): the store, admin and recurring API, options.</param>
    /// <param name="urls">Where to listen, e.g. <c>http://127.0.0.1:5005</c> (port 0 picks a free one).</param>
    /// <param name="configure">Sets the dashboard's options.</param>
    /// <param name="keysFolder">
    /// Where the antiforgery tokens' data-protection keys are kept, so that forms stay valid across restarts and between
    /// instances sharing the folder; null (the default) keeps them in memory for this process and writes nothing.
    /// </param>
    /// <returns>The web application.</returns>
    public static WebApplication Create(IServiceProvider keelServices, string urls, Action<KeelDashboardOptions>? configure, string? keysFolder)
    {
        ArgumentNullException.ThrowIfNull(keelServices);
        ArgumentException.ThrowIfNullOrWhiteSpace(urls);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(urls);
        // Warnings and errors only, on stderr (stdout is for the address line); a failed start is reported once, as one
        // line, by the command (not as the host's stack trace).
        builder.Logging.ClearProviders().AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning)
            .AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        builder.Services.Configure<ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        // The dashboard reads through the application's own Keel services; the application itself is never started.
        builder.Services.AddSingleton(keelServices.GetRequiredService<IKeelStorage>());
        builder.Services.AddSingleton(keelServices.GetRequiredService<IKeelAdmin>());
        builder.Services.AddSingleton(keelServices.GetRequiredService<IKeelRecurring>());
        builder.Services.AddSingleton(keelServices.GetRequiredService<IOptions<KeelOptions>>());
        builder.Services.AddSingleton(keelServices.GetService<TimeProvider>() ?? TimeProvider.System);
        builder.Services.AddKeelDashboard();
        var dataProtection = builder.Services.AddDataProtection().SetApplicationName("Keel.Dashboard");
        if (keysFolder is null)
        {
            // Antiforgery tokens only need to outlive this process: the key ring lives in memory and nothing is written
            // to disk. (An ephemeral provider alone is not enough: data protection's own hosted service still creates a
            // key ring in ~/.aspnet/DataProtection-Keys at start, warning that it is unencrypted.)
            builder.Services.Configure<KeyManagementOptions>(o =>
            {
                o.XmlRepository = new InMemoryXmlRepository();
                o.XmlEncryptor = new NullXmlEncryptor();
            });
        }
        else
        {
            dataProtection.PersistKeysToFileSystem(new DirectoryInfo(keysFolder));
        }

        var app = builder.Build();
        app.MapKeelDashboard("/", configure);
        return app;
    }

    /// <summary>Runs the server until <paramref name="cancellationToken"/> fires, after checking the database schema.</summary>
    /// <param name="keelServices">A service provider with Keel's services.</param>
    /// <param name="urls">Where to listen.</param>
    /// <param name="output">Where to say where it listens.</param>
    /// <param name="configure">Sets the dashboard's options.</param>
    /// <param name="cancellationToken">Stops the server.</param>
    /// <returns>A task that completes when the server has stopped.</returns>
    /// <exception cref="KeelSchemaException">The database is not at this code's schema version.</exception>
    public static Task RunAsync(IServiceProvider keelServices, string urls, TextWriter output, Action<KeelDashboardOptions>? configure, CancellationToken cancellationToken)
        => RunAsync(keelServices, urls, output, configure, keysFolder: null, cancellationToken);

    /// <summary>Runs the server until <paramref name="cancellationToken"/> fires, after checking the database schema.</summary>
    /// <param name="keelServices">A service provider with Keel's services.</param>
    /// <param name="urls">Where to listen.</param>
    /// <param name="output">Where to say where it listens.</param>
    /// <param name="configure">Sets the dashboard's options.</param>
    /// <param name="keysFolder">Where to keep the data-protection keys; null keeps them in memory (see <see cref="Create(IServiceProvider, string, Action{KeelDashboardOptions}?, string?)"/>).</param>
    /// <param name="cancellationToken">Stops the server.</param>
    /// <returns>A task that completes when the server has stopped.</returns>
    /// <exception cref="KeelSchemaException">The database is not at this code's schema version.</exception>
    public static async Task RunAsync(IServiceProvider keelServices, string urls, TextWriter output, Action<KeelDashboardOptions>? configure, string? keysFolder, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keelServices);
        ArgumentNullException.ThrowIfNull(output);
        await SchemaGate.EnsureAsync(keelServices.GetRequiredService<IKeelStorage>(), autoMigrate: false, NullLogger.Instance, cancellationToken);
        await using var app = Create(keelServices, urls, configure, keysFolder);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or FormatException or UriFormatException)
        {
            // Said as what it is (a port in use, a malformed address), not as a database problem; no inner exception,
            // so the command line's error classification cannot mistake a socket error for an unreachable database.
            throw new InvalidOperationException($"cannot listen on {urls}: {e.Message}");
        }
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var address in addresses)
        {
            await output.WriteLineAsync($"Keel dashboard: {address}/  (Ctrl+C to stop)");
        }

        // Stops on the command's token or on SIGTERM/Ctrl+C, which the web host's own lifetime receives.
        await app.WaitForShutdownAsync(cancellationToken);
    }
}
