using System.Diagnostics;
using Keel;

namespace Keel.WorkerService;

/// <summary>The job's arguments.</summary>
/// <param name="Path">The image to resize.</param>
/// <param name="Width">The target width.</param>
public sealed record ResizeArgs(string Path, int Width);

/// <summary>A job that pretends to resize an image, and fails now and then to show retries in the metrics.</summary>
[Job("resize-image", Queue = "images", MaxAttempts = 3)]
public sealed class ResizeImage(ILogger<ResizeImage> logger) : IJob<ResizeArgs>
{
    /// <inheritdoc />
    public async Task PerformAsync(ResizeArgs args, JobContext context, CancellationToken cancellationToken)
    {
        await Task.Delay(Random.Shared.Next(20, 200), cancellationToken);
        if (Random.Shared.Next(10) == 0)
        {
            throw new InvalidOperationException($"could not decode {args.Path}");
        }

        logger.LogInformation("Resized {Path} to {Width} px (job {JobId}, attempt {Attempt})", args.Path, args.Width, context.JobId, context.Attempt);
    }
}

/// <summary>Enqueues a job every second inside a traced "tick" so each perform span links back to it.</summary>
public sealed class Producer(IKeelClient client) : BackgroundService
{
    /// <summary>The producer's activity source.</summary>
    public const string SourceName = "Keel.WorkerService";

    private static readonly ActivitySource Source = new(SourceName);

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var n = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            using (Source.StartActivity("tick"))
            {
                await client.EnqueueAsync<ResizeImage, ResizeArgs>(new ResizeArgs($"photos/{++n}.jpg", 640), cancellationToken: stoppingToken);
            }

            await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
        }
    }
}
