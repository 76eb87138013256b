using Keel;
using Microsoft.EntityFrameworkCore;

namespace Keel.EfCoreSample;

public sealed class Order
{
    public long Id { get; set; }

    public required string Customer { get; set; }

    public bool Confirmed { get; set; }
}

public sealed class ShopContext(DbContextOptions<ShopContext> options) : DbContext(options)
{
    public DbSet<Order> Orders => Set<Order>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Order>().ToTable("shop_orders");
}

public sealed record OrderArgs(long OrderId);

/// <summary>Confirms an order: it only ever sees orders whose transaction committed, because the job committed with them.</summary>
[Job("shop.confirm-order")]
public sealed class ConfirmOrder(ShopContext db) : IJob<OrderArgs>
{
    public async Task PerformAsync(OrderArgs args, JobContext context, CancellationToken cancellationToken)
    {
        var order = await db.Orders.SingleAsync(o => o.Id == args.OrderId, cancellationToken);
        order.Confirmed = true;
        await db.SaveChangesAsync(cancellationToken);
    }
}
