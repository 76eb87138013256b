using Keel;

namespace Keel.WebApp;

/// <summary>An order to fulfil.</summary>
/// <param name="OrderId">The order.</param>
/// <param name="Items">How many items it has.</param>
public sealed record OrderArgs(int OrderId, int Items);

/// <summary>Pretends to fulfil an order: some work per item.</summary>
[Job("fulfil-order", Queue = "orders", MaxAttempts = 5)]
public sealed class FulfilOrder(ILogger<FulfilOrder> logger) : IJob<OrderArgs>
{
    /// <inheritdoc />
    public async Task PerformAsync(OrderArgs args, JobContext context, CancellationToken cancellationToken)
    {
        for (var i = 0; i < args.Items; i++)
        {
            await Task.Delay(50, cancellationToken);
        }

        logger.LogInformation("Order {OrderId} fulfilled by job {JobId}", args.OrderId, context.JobId);
    }
}
