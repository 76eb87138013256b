using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Keel.EntityFrameworkCore;

/// <summary>Enqueues Keel jobs inside a <see cref="DbContext"/>'s transaction.</summary>
public static class KeelDbContextExtensions
{
    /// <summary>
    /// Keel on this context's connection and current transaction, with the <see cref="IKeelClient"/> of the application's
    /// services (the context must come from <c>AddDbContext</c> in the same container as <c>AddKeel</c>).
    /// </summary>
    /// <param name="context">The context; Keel's tables must be in the database it connects to.</param>
    /// <returns>What enqueues on the context's transaction.</returns>
    /// <exception cref="InvalidOperationException">The application's services have no <see cref="IKeelClient"/>.</exception>
    public static KeelDbContextClient Keel(this DbContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        // The application's container, which AddDbContext records on the context's options (EF's own GetService throws
        // an EF message when a service is missing; this one names what to do).
        var services = context.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.ApplicationServiceProvider;
        var client = services?.GetService(typeof(IKeelClient)) as IKeelClient
            ?? throw new InvalidOperationException($"{context.GetType().Name}.Keel() found no IKeelClient in the application's services: call AddKeel in the container the context comes from, or pass the client: context.Keel(keelClient)");
        return new KeelDbContextClient(context, client);
    }

    /// <summary>Keel on this context's connection and current transaction, through <paramref name="client"/>.</summary>
    /// <param name="context">The context; Keel's tables must be in the database it connects to.</param>
    /// <param name="client">The Keel client.</param>
    /// <returns>What enqueues on the context's transaction.</returns>
    public static KeelDbContextClient Keel(this DbContext context, IKeelClient client)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(client);
        return new KeelDbContextClient(context, client);
    }
}
