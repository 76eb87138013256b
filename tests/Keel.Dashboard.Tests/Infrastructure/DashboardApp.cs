using System.Globalization;
using System.Net;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Keel.Dashboard.Tests.Infrastructure;

public enum Engine
{
    Sqlite,
    PostgreSql,
    MySql,
}

/// <summary>
/// An ASP.NET Core app on Kestrel (127.0.0.1, a free port) with Keel on a fresh database — it runs no jobs — and the
/// dashboard mounted at <c>/keel</c>. A test header stands in for the remote address, to test the loopback rule.
/// </summary>
public sealed class DashboardApp : IAsyncDisposable
{
    /// <summary>Test-only: the remote address the request should appear to come from.</summary>
    public const string RemoteAddressHeader = "X-Test-Remote-Address";

    private static readonly Lazy<Task<PostgresServer>> Postgres = new(() => PostgresServer.StartAsync());

    private static readonly Lazy<Task<MariaDbServer>> MariaDb = new(() => MariaDbServer.StartAsync());

    private readonly WebApplication _app;
    private readonly string? _sqlitePath;
    private readonly string _prefix;

    private DashboardApp(WebApplication app, string root, string? sqlitePath, Engine engine, string prefix)
    {
        _app = app;
        Root = root;
        _prefix = prefix.TrimEnd('/');
        _sqlitePath = sqlitePath;
        Engine = engine;
        Seed = new Seed(Client, Storage, Recurring);
    }

    public Engine Engine { get; }

    /// <summary>The server, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Root { get; }

    /// <summary>The dashboard, e.g. <c>http://127.0.0.1:41234/keel</c>.</summary>
    public string BaseUrl => Root + _prefix;

    public IKeelClient Client => _app.Services.GetRequiredService<IKeelClient>();

    public IKeelAdmin Admin => _app.Services.GetRequiredService<IKeelAdmin>();

    public IKeelStorage Storage => _app.Services.GetRequiredService<IKeelStorage>();

    public IKeelRecurring Recurring => _app.Services.GetRequiredService<IKeelRecurring>();

    public Seed Seed { get; }

    public static async Task<DashboardApp> StartAsync(Engine engine, Action<KeelDashboardOptions>? configure = null, Action<IServiceCollection>? services = null, string prefix = "/keel")
    {
        string? sqlitePath = null;
        string database;
        if (engine == Engine.Sqlite)
        {
            var folder = Path.Combine(Path.GetTempPath(), "keel-dashboard-tests-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            Directory.CreateDirectory(folder);
            database = sqlitePath = Path.Combine(folder, Guid.NewGuid().ToString("N") + ".db");
        }
        else if (engine == Engine.MySql)
        {
            database = await (await MariaDb.Value).CreateDatabaseAsync();
        }
        else
        {
            database = await (await Postgres.Value).CreateDatabaseAsync();
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration["Keel:ProcessJobs"] = "false";
        builder.Services.AddKeel(keel =>
        {
            _ = engine switch
            {
                Engine.Sqlite => keel.UseSqlite(database),
                Engine.MySql => keel.UseMySql(database),
                _ => keel.UsePostgreSql(database),
            };

            keel.AddJob<SendWelcomeEmail>()
                .AddJob<BuildReport>()
                .AddJob<SyncAccount>(o => o.LimitConcurrency<AccountArgs>(a => a.AccountId.ToString(CultureInfo.InvariantCulture)));
        });
        builder.Services.AddKeelDashboard();
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        services?.Invoke(builder.Services);
        var app = builder.Build();
        app.Use((context, next) =>
        {
            if (context.Request.Headers.TryGetValue(RemoteAddressHeader, out var address))
            {
                context.Connection.RemoteIpAddress = IPAddress.Parse(address.ToString());
            }

            return next(context);
        });
        app.MapKeelDashboard(prefix, configure);
        try
        {
            await app.Services.GetRequiredService<IKeelStorage>().MigrateAsync(CancellationToken.None);
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        var root = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new DashboardApp(app, root, sqlitePath, engine, prefix);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (_sqlitePath is not null)
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
            {
                try
                {
                    File.Delete(_sqlitePath + suffix);
                }
                catch (IOException)
                {
                }
            }
        }
    }
}
