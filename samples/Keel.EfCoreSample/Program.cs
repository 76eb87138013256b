// Keel + EF Core: an order and the job that confirms it are written in one transaction — both or neither.
// Run it with: dotnet run --project samples/Keel.EfCoreSample
using Keel;
using Keel.EfCoreSample;
using Keel.EntityFrameworkCore;
using Keel.Hosting;
using Keel.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var databasePath = Path.Combine(Environment.CurrentDirectory, "keel-efcore-sample.db");
foreach (var suffix in new[] { "", "-wal", "-shm" })
{
    File.Delete(databasePath + suffix);
}

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Keel", LogLevel.Error);
// One database for your tables and Keel's: that is what lets a job join your transaction.
builder.Services.AddDbContext<ShopContext>(o => o.UseSqlite($"Data Source={databasePath}"));
builder.Services.AddKeel(keel => keel.UseSqlite(databasePath).AddJob<ConfirmOrder>());

using var host = builder.Build();
await using (var scope = host.Services.CreateAsyncScope())
{
    // Keel creates its own tables at start; create the shop's.
    await scope.ServiceProvider.GetRequiredService<ShopContext>().GetService<IRelationalDatabaseCreator>().CreateTablesAsync();
}

await host.StartAsync();

async Task<long> PlaceOrderAsync(string customer, bool commit)
{
    await using var scope = host.Services.CreateAsyncScope();
    var db = scope.ServiceProvider.GetRequiredService<ShopContext>();
    await using var transaction = await db.Database.BeginTransactionAsync();
    var order = new Order { Customer = customer };
    db.Orders.Add(order);
    await db.SaveChangesAsync();
    var jobId = await db.Keel().EnqueueAsync<ConfirmOrder, OrderArgs>(new(order.Id));
    if (commit)
    {
        await transaction.CommitAsync();
    }
    else
    {
        await transaction.RollbackAsync();
    }

    Console.WriteLine($"order for {customer}: {(commit ? "committed" : "rolled back")} with job {jobId}");
    return jobId;
}

var kept = await PlaceOrderAsync("ada", commit: true);
var dropped = await PlaceOrderAsync("bob", commit: false);

var keelClient = host.Services.GetRequiredService<IKeelClient>();
var deadline = DateTime.UtcNow.AddSeconds(30);
while ((await keelClient.GetJobAsync(kept))?.State != JobState.Finished && DateTime.UtcNow < deadline)
{
    await Task.Delay(100);
}

await using (var scope = host.Services.CreateAsyncScope())
{
    var orders = await scope.ServiceProvider.GetRequiredService<ShopContext>().Orders.OrderBy(o => o.Id).ToListAsync();
    Console.WriteLine($"orders in the database: {string.Join(", ", orders.Select(o => $"{o.Customer} (confirmed: {o.Confirmed})"))}");
}

Console.WriteLine($"job {kept}: {(await keelClient.GetJobAsync(kept))?.State.ToString() ?? "none"}; job {dropped}: {(await keelClient.GetJobAsync(dropped))?.State.ToString() ?? "none — it rolled back with its order"}");
await host.StopAsync();
