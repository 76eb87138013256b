using Microsoft.Extensions.DependencyInjection;

namespace Keel.Dashboard;

/// <summary>Adds what the Keel dashboard needs to a service collection.</summary>
public static class KeelDashboardServiceCollectionExtensions
{
    /// <summary>
    /// Adds the services the dashboard needs besides Keel's own (<c>AddKeel</c>): antiforgery, which guards every
    /// action the dashboard offers.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddKeelDashboard(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddAntiforgery();
        return services;
    }
}
