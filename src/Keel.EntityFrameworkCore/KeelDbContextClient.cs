using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Keel.EntityFrameworkCore;

/// <summary>
/// Enqueues jobs on a <see cref="DbContext"/>'s open connection and current transaction: the job rows are written in that
/// transaction, so they exist if and only if it commits — together with what <c>SaveChanges</c> wrote. Get one with
/// <see cref="KeelDbContextExtensions.Keel(DbContext)"/>.
/// </summary>
/// <example>
/// <code>
/// await using var tx = await db.Database.BeginTransactionAsync(ct);
/// db.Orders.Add(order);
/// await db.SaveChangesAsync(ct);
/// await db.Keel().EnqueueAsync&lt;SendConfirmation, OrderArgs&gt;(new(order.Id), cancellationToken: ct);
/// await tx.CommitAsync(ct);   // the order and its job, or neither
/// </code>
/// </example>
public sealed class KeelDbContextClient
{
    private readonly DbContext _context;
    private readonly IKeelClient _client;

    internal KeelDbContextClient(DbContext context, IKeelClient client)
    {
        _context = context;
        _client = client;
    }

    /// <summary>Enqueues a job of type <typeparamref name="TJob"/> in the context's transaction.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Queue, priority, schedule or uniqueness overrides.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id (the job exists once the transaction commits).</returns>
    /// <exception cref="InvalidOperationException">The context has no transaction.</exception>
    public Task<long> EnqueueAsync<TJob, TArgs>(TArgs args, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => EnqueueAsync(JobRequest.Create<TJob, TArgs>(args, options), cancellationToken);

    /// <summary>Enqueues a job in the context's transaction, to run no earlier than <paramref name="runAt"/>.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="args">The arguments.</param>
    /// <param name="runAt">The earliest run time.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id (the job exists once the transaction commits).</returns>
    /// <exception cref="InvalidOperationException">The context has no transaction.</exception>
    public Task<long> ScheduleAsync<TJob, TArgs>(TArgs args, DateTimeOffset runAt, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => EnqueueAsync<TJob, TArgs>(args, new EnqueueOptions { ScheduledAt = runAt }, cancellationToken);

    /// <summary>Enqueues one job in the context's transaction.</summary>
    /// <param name="request">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id (the job exists once the transaction commits).</returns>
    /// <exception cref="InvalidOperationException">The context has no transaction.</exception>
    public async Task<long> EnqueueAsync(JobRequest request, CancellationToken cancellationToken = default)
        => (await EnqueueManyAsync([request], cancellationToken))[0];

    /// <summary>Enqueues many jobs in the context's transaction, in one round trip.</summary>
    /// <param name="requests">The jobs.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job ids in order (the jobs exist once the transaction commits).</returns>
    /// <exception cref="InvalidOperationException">The context has no transaction.</exception>
    public Task<IReadOnlyList<long>> EnqueueManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        // Without a transaction the job would commit on its own at once, whatever became of SaveChanges: the one
        // promise this type makes would silently not hold.
        var transaction = _context.Database.CurrentTransaction
            ?? throw new InvalidOperationException($"enqueueing through {_context.GetType().Name}.Keel() needs the context's transaction, and it has none: begin one (await db.Database.BeginTransactionAsync()), SaveChanges and enqueue inside it, then commit — the jobs then exist if and only if your changes commit. To enqueue outside any transaction, use IKeelClient directly.");
        var dbTransaction = transaction.GetDbTransaction();
        var connection = dbTransaction.Connection
            ?? throw new InvalidOperationException("the context's transaction has no connection: it was already committed or rolled back");
        return _client.EnqueueManyAsync(requests, connection, dbTransaction, cancellationToken);
    }
}
