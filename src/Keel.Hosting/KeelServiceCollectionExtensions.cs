using Keel.Registry;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Keel.Hosting;

/// <summary>Adds Keel to a service collection.</summary>
public static class KeelServiceCollectionExtensions
{
    /// <summary>
    /// Adds Keel: the <see cref="IKeelClient"/>, and (unless <see cref="KeelOptions.ProcessJobs"/> is false) workers and a
    /// dispatcher running as a hosted service. Options bind from the <c>Keel</c> configuration section and are
    /// validated at start.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Chooses the store and registers job kinds.</param>
    /// <returns>The builder, to add more jobs.</returns>
    public static IKeelBuilder AddKeel(this IServiceCollection services, Action<IKeelBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = new KeelBuilder(services);
        configure?.Invoke(builder);

        services.AddOptions<KeelOptions>().ValidateOnStart();
        services.AddSingleton<IConfigureOptions<KeelOptions>>(sp => new ConfigureNamedOptions<KeelOptions>(
            Options.DefaultName,
            options => BindChecked(sp.GetService<IConfiguration>(), sp.GetServices<IKeelStorageProvider>(), options)));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KeelOptions>, KeelOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KeelOptions>, RecurringKindsValidator>());
        // The host's own stop timeout must cover Keel's whole graceful stop (DESIGN §2.6): the .NET default is 30 s.
        services.AddOptions<HostOptions>().PostConfigure<IOptions<KeelOptions>>((host, keel) =>
        {
            KeelOptions options;
            try
            {
                options = keel.Value;
            }
            catch (OptionsValidationException)
            {
                return; // Start-up fails on the same validation, with its message naming the key.
            }

            var needed = options.StopBudget + TimeSpan.FromSeconds(2);
            if (host.ShutdownTimeout < needed)
            {
                host.ShutdownTimeout = needed;
            }
        });
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new KeelClock(sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<JobSignal>();
        services.TryAddSingleton(builder.Registry);
        // The store the code chose (UseSqlite(path), UsePostgreSql(connectionString)); else the one Keel:Database names,
        // opened by the provider of its engine (UseSqlite(), UsePostgreSql() with no database).
        services.TryAddSingleton(sp => builder.StorageFactory?.Invoke(sp) ?? KeelDatabaseSetting.Open(sp.GetRequiredService<IOptions<KeelOptions>>().Value.Database, sp));
        services.TryAddSingleton<IKeelClient, KeelClient>();
        services.TryAddSingleton<IKeelAdmin, KeelAdmin>();
        services.TryAddSingleton<IKeelRecurring, KeelRecurring>();
        services.TryAddSingleton(sp => new JobExecutor(sp, sp.GetRequiredService<JobRegistry>(), sp.GetRequiredService<IOptions<KeelOptions>>().Value));
        services.AddHostedService(sp => new KeelHostedService(
            sp.GetRequiredService<IKeelStorage>(),
            sp.GetRequiredService<JobRegistry>(),
            sp.GetRequiredService<JobExecutor>(),
            sp.GetRequiredService<JobSignal>(),
            sp.GetRequiredService<IOptions<KeelOptions>>().Value,
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetRequiredService<KeelClock>(),
            sp.GetRequiredService<IHostApplicationLifetime>(),
            sp.GetService<KeelRole>()));
        return builder;
    }

    /// <summary>
    /// Binds the <c>Keel</c> section after checking it key by key (<see cref="KeelConfigurationCheck"/>): the binder alone
    /// would drop a list entry with a bad value, ignore a misspelt key, and bind an empty list to the defaults.
    /// </summary>
    private static void BindChecked(IConfiguration? configuration, IEnumerable<IKeelStorageProvider> providers, KeelOptions options)
    {
        if (configuration is null)
        {
            return;
        }

        var section = configuration.GetSection(KeelOptions.SectionName);
        var errors = KeelConfigurationCheck.Check(section, providers: providers);
        if (errors.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(KeelOptions), errors);
        }

        section.Bind(options);
    }
}
