using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Keel.TestInfrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Keel.EntityFrameworkCore.Tests;

public sealed class Order
{
    public long Id { get; set; }

    public required string Customer { get; set; }
}

public sealed class ShopContext(DbContextOptions<ShopContext> options) : DbContext(options)
{
    public DbSet<Order> Orders => Set<Order>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => modelBuilder.Entity<Order>().ToTable("shop_orders");
}

public sealed record OrderArgs(long OrderId);

/// <summary>The orders whose confirmation job ran.</summary>
public sealed class Confirmations
{
    private readonly TaskCompletionSource<long> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<long> First => _first.Task;

    public void Confirmed(long orderId) => _first.TrySetResult(orderId);
}

[Job("shop.confirm")]
public sealed class ConfirmOrder(Confirmations confirmations, ShopContext db) : IJob<OrderArgs>
{
    public async Task PerformAsync(OrderArgs args, JobContext context, CancellationToken cancellationToken)
    {
        // The job sees the order its transaction committed with it.
        var order = await db.Orders.SingleAsync(o => o.Id == args.OrderId, cancellationToken);
        confirmations.Confirmed(order.Id);
    }
}

public enum EfEngine
{
    Sqlite,
    PostgreSql,
}

/// <summary>One throwaway PostgreSQL server for these tests (or the one named by KEEL_TEST_POSTGRES).</summary>
internal static class SharedPostgres
{
    private static readonly Lazy<Task<PostgresServer>> Server = new(() => PostgresServer.StartAsync());

    public static Task<PostgresServer> GetAsync() => Server.Value;
}

public sealed class EfCoreEnqueueTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    /// <summary>An application host: Keel's workers and an EF context on one database, its order table created.</summary>
    private static async Task<IHost> StartAppAsync(EfEngine engine, string? sqlitePath = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<Confirmations>();
        if (engine == EfEngine.Sqlite)
        {
            var path = sqlitePath!;
            builder.Services.AddDbContext<ShopContext>(o => o.UseSqlite($"Data Source={path}"));
            builder.Services.AddKeel(k => k.UseSqlite(path).AddJob<ConfirmOrder>(o => o.MaxAttempts = 1));
        }
        else
        {
            var server = await SharedPostgres.GetAsync();
            var connectionString = await server.CreateDatabaseAsync();
            builder.Services.AddDbContext<ShopContext>(o => o.UseNpgsql(connectionString));
            builder.Services.AddKeel(k => k.UsePostgreSql(connectionString).AddJob<ConfirmOrder>(o => o.MaxAttempts = 1));
        }

        var host = builder.Build();
        await using (var scope = host.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ShopContext>();
            // Keel's tables may be there already: create the model's own tables only.
            await db.GetService<IRelationalDatabaseCreator>().CreateTablesAsync();
        }

        await host.StartAsync();
        return host;
    }

    private static string SqlitePath() => Path.Combine(Path.GetTempPath(), $"keel-ef-{Guid.NewGuid():N}.db");

    [Theory]
    [InlineData(EfEngine.Sqlite)]
    [InlineData(EfEngine.PostgreSql)]
    public async Task A_job_enqueued_in_a_committed_transaction_exists_and_runs(EfEngine engine)
    {
        var path = SqlitePath();
        using var host = await StartAppAsync(engine, path);
        try
        {
            long orderId;
            long jobId;
            await using (var scope = host.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<ShopContext>();
                await using var transaction = await db.Database.BeginTransactionAsync();
                var order = new Order { Customer = "ada" };
                db.Orders.Add(order);
                await db.SaveChangesAsync();
                orderId = order.Id;
                jobId = await db.Keel().EnqueueAsync<ConfirmOrder, OrderArgs>(new(order.Id));
                await transaction.CommitAsync();
            }

            var confirmed = await host.Services.GetRequiredService<Confirmations>().First.WaitAsync(Generous);

            Assert.Equal(orderId, confirmed);
            var keel = host.Services.GetRequiredService<IKeelClient>();
            Assert.Equal(JobState.Finished, (await WaitForStateAsync(keel, jobId, JobState.Finished)).State);
        }
        finally
        {
            await host.StopAsync();
            DeleteSqlite(path);
        }
    }

    [Theory]
    [InlineData(EfEngine.Sqlite)]
    [InlineData(EfEngine.PostgreSql)]
    public async Task A_job_enqueued_in_a_rolled_back_transaction_never_exists(EfEngine engine)
    {
        var path = SqlitePath();
        using var host = await StartAppAsync(engine, path);
        try
        {
            long jobId;
            await using (var scope = host.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<ShopContext>();
                await using var transaction = await db.Database.BeginTransactionAsync();
                var order = new Order { Customer = "bob" };
                db.Orders.Add(order);
                await db.SaveChangesAsync();
                jobId = await db.Keel().EnqueueAsync<ConfirmOrder, OrderArgs>(new(order.Id));
                await transaction.RollbackAsync();
            }

            var keel = host.Services.GetRequiredService<IKeelClient>();
            Assert.Null(await keel.GetJobAsync(jobId));
            var storage = host.Services.GetRequiredService<IKeelStorage>();
            Assert.Empty(await storage.JobsListAsync(new JobsListParams(null, null, null, null, null, 10), CancellationToken.None));
            await using var check = host.Services.CreateAsyncScope();
            Assert.Equal(0, await check.ServiceProvider.GetRequiredService<ShopContext>().Orders.CountAsync());
        }
        finally
        {
            await host.StopAsync();
            DeleteSqlite(path);
        }
    }

    [Fact]
    public async Task Enqueue_without_a_transaction_is_refused_with_what_to_do()
    {
        var path = SqlitePath();
        using var host = await StartAppAsync(EfEngine.Sqlite, path);
        try
        {
            await using var scope = host.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ShopContext>();

            var error = await Assert.ThrowsAsync<InvalidOperationException>(() => db.Keel().EnqueueAsync<ConfirmOrder, OrderArgs>(new(1)));

            Assert.Contains("BeginTransactionAsync", error.Message, StringComparison.Ordinal);
            var storage = host.Services.GetRequiredService<IKeelStorage>();
            Assert.Empty(await storage.JobsListAsync(new JobsListParams(null, null, null, null, null, 10), CancellationToken.None));
        }
        finally
        {
            await host.StopAsync();
            DeleteSqlite(path);
        }
    }

    [Fact]
    public async Task A_context_outside_the_keel_container_says_how_to_pass_the_client()
    {
        var options = new DbContextOptionsBuilder<ShopContext>().UseSqlite("Data Source=:memory:").Options;
        await using var db = new ShopContext(options);

        var error = Assert.Throws<InvalidOperationException>(() => db.Keel());

        Assert.Contains("AddKeel", error.Message, StringComparison.Ordinal);
    }

    private static async Task<JobInfo> WaitForStateAsync(IKeelClient keel, long jobId, JobState state)
    {
        var deadline = DateTime.UtcNow + Generous;
        while (true)
        {
            var job = await keel.GetJobAsync(jobId);
            if (job?.State == state || DateTime.UtcNow > deadline)
            {
                return job ?? throw new InvalidOperationException($"job {jobId} does not exist");
            }

            await Task.Delay(100);
        }
    }

    private static void DeleteSqlite(string path)
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            File.Delete(file);
        }
    }
}
