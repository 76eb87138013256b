namespace Keel;

/// <summary>
/// A background job. Keel resolves a fresh instance from dependency injection (in its own scope) for
/// every run and calls <see cref="PerformAsync"/> with the deserialized arguments.
/// </summary>
/// <typeparam name="TArgs">The arguments type, stored as JSON with the job.</typeparam>
public interface IJob<in TArgs>
{
    /// <summary>Runs the job once.</summary>
    /// <param name="args">The arguments the job was enqueued with.</param>
    /// <param name="context">Facts about this run: job id, attempt, queue.</param>
    /// <param name="cancellationToken">Cancelled when the job times out or the worker must stop.</param>
    Task PerformAsync(TArgs args, JobContext context, CancellationToken cancellationToken);
}
