using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Keel;

/// <summary>Registers store providers: what a store package's <c>UseXxx()</c> calls.</summary>
public static class KeelStorageBuilderExtensions
{
    /// <summary>
    /// Makes an engine available to <c>Keel:Database</c> and <c>--database</c>. Adding the same provider type twice
    /// registers it once.
    /// </summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="provider">The engine's provider.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder AddStorageProvider(this IKeelBuilder builder, IKeelStorageProvider provider)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(provider);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton(provider));
        return builder;
    }
}
