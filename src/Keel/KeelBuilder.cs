using System.Reflection;
using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Keel;

/// <summary>The <see cref="IKeelBuilder"/> behind <c>AddKeel</c>.</summary>
internal sealed class KeelBuilder(IServiceCollection services) : IKeelBuilder
{
    public IServiceCollection Services { get; } = services;

    public JobRegistry Registry { get; } = new();

    public Func<IServiceProvider, IKeelStorage>? StorageFactory { get; private set; }

    public IKeelBuilder AddJob<TJob>(Action<JobOptions>? configure = null)
        where TJob : class
    {
        Registry.Add(typeof(TJob), configure);
        Services.TryAddTransient<TJob>();
        return this;
    }

    public IKeelBuilder AddJobsFromAssembly(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        foreach (var type in assembly.GetTypes().Where(t => t.IsClass && JobRegistry.ArgsTypeOf(t) is not null))
        {
            Registry.Add(type, null);
            Services.TryAddTransient(type);
        }

        return this;
    }

    public IKeelBuilder UseStorage(Func<IServiceProvider, IKeelStorage> factory)
    {
        StorageFactory = factory ?? throw new ArgumentNullException(nameof(factory));
        return this;
    }

    public IKeelBuilder Configure(Action<KeelOptions> configure)
    {
        Services.PostConfigure(configure);
        return this;
    }
}
