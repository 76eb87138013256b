using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Keel.Tests.EndToEnd;

/// <summary>Builds and starts a real host running Keel in-process against a test database.</summary>
public static class KeelHost
{
    public static IHost Build(TestDatabase db, Recorder recorder, Action<KeelOptions>? configure = null, IDictionary<string, string?>? settings = null, bool useDatabaseSetting = false, Func<Keel.Storage.IKeelStorage, Keel.Storage.IKeelStorage>? wrapStorage = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        if (settings is not null)
        {
            builder.Configuration.AddInMemoryCollection(settings);
        }

        builder.Services.AddSingleton(recorder);
        builder.Services.AddKeel(k =>
        {
            if (!useDatabaseSetting)
            {
                k.UseStorage(_ => wrapStorage is null ? db.NewStorage() : wrapStorage(db.NewStorage()));
            }
            else
            {
                k.UseSqlite().UsePostgreSql().UseMySql();
            }

            k.AddJob<CountingJob>()
                .AddJob<AlwaysFailsJob>()
                .AddJob<DiscardingJob>()
                .AddJob<SleepingJob>()
                .AddJob<TimingOutJob>()
                .AddJob<IgnoresCancellationJob>()
                .AddJob<OvertimeJob>()
                .AddJob<FencedJob>()
                .AddJob<AddsToBatchJob>()
                .AddJob<ReportsProgressJob>()
                .AddJob<LogsAndResultJob>()
                .AddJob<ResumableJob>()
                .AddJob<PerAccountJob>(o => o.LimitConcurrency<AccountArgs>(a => a.Account.ToString(System.Globalization.CultureInfo.InvariantCulture), limit: 1));
            k.Configure(o =>
            {
                o.Dispatcher.PollingInterval = TimeSpan.FromMilliseconds(50);
                foreach (var worker in o.Workers)
                {
                    worker.PollingInterval = TimeSpan.FromMilliseconds(50);
                }

                configure?.Invoke(o);
            });
        });
        return builder.Build();
    }

    public static async Task<IHost> StartAsync(TestDatabase db, Recorder recorder, Action<KeelOptions>? configure = null)
    {
        var host = Build(db, recorder, configure);
        await host.StartAsync();
        return host;
    }

    public static WorkerOptions Worker(int threads, params string[] queues) => new()
    {
        Threads = threads,
        Queues = queues.Length == 0 ? ["*"] : [.. queues],
        PollingInterval = TimeSpan.FromMilliseconds(50),
    };
}
