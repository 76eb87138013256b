using System.Data.Common;

namespace Keel;

/// <summary>Typed shortcuts over <see cref="IKeelClient"/>.</summary>
public static class KeelClientExtensions
{
    /// <summary>Enqueues a job of type <typeparamref name="TJob"/> to run as soon as a worker is free.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="client">The client.</param>
    /// <param name="args">The arguments.</param>
    /// <param name="options">Queue, priority or schedule overrides.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id.</returns>
    public static Task<long> EnqueueAsync<TJob, TArgs>(this IKeelClient client, TArgs args, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.EnqueueAsync(JobRequest.Create<TJob, TArgs>(args, options), cancellationToken);
    }

    /// <summary>Enqueues a job to run no earlier than <paramref name="runAt"/>.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="client">The client.</param>
    /// <param name="args">The arguments.</param>
    /// <param name="runAt">The earliest run time.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id.</returns>
    public static Task<long> ScheduleAsync<TJob, TArgs>(this IKeelClient client, TArgs args, DateTimeOffset runAt, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => client.EnqueueAsync<TJob, TArgs>(args, new EnqueueOptions { ScheduledAt = runAt }, cancellationToken);

    /// <summary>Enqueues a job to run no earlier than <paramref name="delay"/> from now.</summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="client">The client.</param>
    /// <param name="args">The arguments.</param>
    /// <param name="delay">How long to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id.</returns>
    public static Task<long> ScheduleAsync<TJob, TArgs>(this IKeelClient client, TArgs args, TimeSpan delay, CancellationToken cancellationToken = default)
        where TJob : IJob<TArgs>
        => client.EnqueueAsync<TJob, TArgs>(args, new EnqueueOptions { Delay = delay }, cancellationToken);

    /// <summary>Enqueues one job inside the caller's transaction: it exists if and only if the caller commits.</summary>
    /// <param name="client">The client.</param>
    /// <param name="request">The job.</param>
    /// <param name="transaction">The caller's open transaction on Keel's database.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The job id.</returns>
    public static async Task<long> EnqueueAsync(this IKeelClient client, JobRequest request, DbTransaction transaction, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(transaction);
        var connection = transaction.Connection ?? throw new ArgumentException("the transaction has no connection: it was already committed or rolled back", nameof(transaction));
        var ids = await client.EnqueueManyAsync([request], connection, transaction, cancellationToken);
        return ids[0];
    }

    /// <summary>The fluent form of a continuation: <c>await keel.After(parent).When(ContinueWhen.Finished).EnqueueAsync&lt;TJob, TArgs&gt;(args)</c>.</summary>
    /// <param name="client">The client.</param>
    /// <param name="parents">The parents: one id, or several.</param>
    /// <returns>A builder of the continuation.</returns>
    public static ContinuationBuilder After(this IKeelClient client, JobParents parents)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(parents);
        return new ContinuationBuilder(client, parents);
    }
}
