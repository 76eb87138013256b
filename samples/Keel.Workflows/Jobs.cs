using System.IO.Compression;

namespace Keel.Workflows;

public sealed record ResizeArgs(string Source, string TargetFolder, int Width);

/// <summary>
/// Resizes one image. Simulated: it writes a smaller file derived from the source (the work a real resizer does with an
/// image library), and takes a moment, as an image would.
/// </summary>
[Job("images.resize", Queue = "images")]
public sealed class ResizeImage : IJob<ResizeArgs>
{
    public async Task PerformAsync(ResizeArgs args, JobContext context, CancellationToken cancellationToken)
    {
        var bytes = await File.ReadAllBytesAsync(args.Source, cancellationToken);
        await Task.Delay(Random.Shared.Next(20, 120), cancellationToken);
        var thumbnail = bytes.Take(Math.Max(1, bytes.Length * args.Width / 4000)).ToArray();
        var target = Path.Combine(args.TargetFolder, Path.GetFileNameWithoutExtension(args.Source) + $"-{args.Width}.jpg");
        await File.WriteAllBytesAsync(target, thumbnail, cancellationToken);
        Console.WriteLine($"  job {context.JobId,3}  resized {Path.GetFileName(args.Source)} to {args.Width} px (batch {context.BatchId})");
    }
}

public sealed record ZipArgs(string Album, string Folder, string ZipPath);

/// <summary>The batch's success callback: every image was resized, so zip the thumbnails.</summary>
[Job("albums.zip", Queue = "albums")]
public sealed class ZipAlbum : IJob<ZipArgs>
{
    public Task PerformAsync(ZipArgs args, JobContext context, CancellationToken cancellationToken)
    {
        File.Delete(args.ZipPath); // a retry starts over
        ZipFile.CreateFromDirectory(args.Folder, args.ZipPath);
        Console.WriteLine($"  job {context.JobId,3}  zipped album '{args.Album}': {new FileInfo(args.ZipPath).Length:N0} bytes in {Path.GetFileName(args.ZipPath)}");
        return Task.CompletedTask;
    }
}

public sealed record NotifyArgs(string Album);

/// <summary>The batch's completion callback: runs once every job of the batch has settled, whatever happened to each.</summary>
[Job("albums.notify", Queue = "albums")]
public sealed class NotifyOwner : IJob<NotifyArgs>
{
    public Task PerformAsync(NotifyArgs args, JobContext context, CancellationToken cancellationToken)
    {
        Console.WriteLine($"  job {context.JobId,3}  told the owner that album '{args.Album}' is processed");
        return Task.CompletedTask;
    }
}

public sealed record PublishArgs(string ZipPath);

/// <summary>A job of the batch that waits for another: publishes the album page once its cover is resized.</summary>
[Job("albums.publish", Queue = "albums")]
public sealed class PublishAlbum : IJob<PublishArgs>
{
    public Task PerformAsync(PublishArgs args, JobContext context, CancellationToken cancellationToken)
    {
        Console.WriteLine($"  job {context.JobId,3}  published the album page (after its cover was resized)");
        return Task.CompletedTask;
    }
}
