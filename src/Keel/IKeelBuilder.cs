using System.Reflection;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel;

/// <summary>Configures Keel inside <c>services.AddKeel(k => …)</c>: the store, the job kinds, the options.</summary>
public interface IKeelBuilder
{
    /// <summary>The service collection Keel registers into.</summary>
    IServiceCollection Services { get; }

    /// <summary>Registers a job class; its kind comes from <see cref="JobAttribute"/> or its type name.</summary>
    /// <typeparam name="TJob">A class implementing <see cref="IJob{TArgs}"/>.</typeparam>
    /// <param name="configure">Adjusts the kind's options after the attribute's.</param>
    /// <returns>This builder.</returns>
    IKeelBuilder AddJob<TJob>(Action<JobOptions>? configure = null)
        where TJob : class;

    /// <summary>Registers every concrete class in <paramref name="assembly"/> that implements <see cref="IJob{TArgs}"/>.</summary>
    /// <param name="assembly">The assembly to scan.</param>
    /// <returns>This builder.</returns>
    IKeelBuilder AddJobsFromAssembly(Assembly assembly);

    /// <summary>Uses a store built by <paramref name="factory"/> (the <c>UseSqlite</c> and <c>UsePostgreSql</c> extensions call this).</summary>
    /// <param name="factory">Builds the store once, from the application's services.</param>
    /// <returns>This builder.</returns>
    IKeelBuilder UseStorage(Func<IServiceProvider, IKeelStorage> factory);

    /// <summary>Adjusts <see cref="KeelOptions"/> after configuration is bound.</summary>
    /// <param name="configure">The adjustment.</param>
    /// <returns>This builder.</returns>
    IKeelBuilder Configure(Action<KeelOptions> configure);
}
