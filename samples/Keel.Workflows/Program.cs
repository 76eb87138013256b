// Keel workflows sample: fan out image resizes in a batch, then zip the results when every one has succeeded.
// Run it with: dotnet run --project samples/Keel.Workflows
using System.Diagnostics;
using Keel;
using Keel.Hosting;
using Keel.Sqlite;
using Keel.Workflows;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

const int Images = 24;
var work = Path.Combine(Path.GetTempPath(), "keel-workflows-" + Guid.NewGuid().ToString("N")[..8]);
var originals = Directory.CreateDirectory(Path.Combine(work, "originals")).FullName;
var thumbnails = Directory.CreateDirectory(Path.Combine(work, "thumbnails")).FullName;
var zip = Path.Combine(work, "album-42.zip");
for (var i = 1; i <= Images; i++)
{
    // Stand-ins for photos: a few hundred KB of bytes each.
    var image = new byte[Random.Shared.Next(200_000, 600_000)];
    Random.Shared.NextBytes(image);
    await File.WriteAllBytesAsync(Path.Combine(originals, $"photo-{i:00}.jpg"), image);
}

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Keel", LogLevel.Error);
builder.Services.AddKeel(keel => keel
    .UseSqlite(Path.Combine(work, "keel.db"))
    .AddJob<ResizeImage>()
    .AddJob<ZipAlbum>()
    .AddJob<NotifyOwner>()
    .AddJob<PublishAlbum>()
    .Configure(options =>
    {
        options.Workers.Add(new WorkerOptions { Queues = ["*"], Threads = 6, PollingInterval = TimeSpan.FromMilliseconds(100) });
        options.Dispatcher.PollingInterval = TimeSpan.FromMilliseconds(200);
    }));

using var host = builder.Build();
var client = host.Services.GetRequiredService<IKeelClient>();
var stopwatch = Stopwatch.StartNew();

// The fan-out: one resize per image, in one batch; the fan-in: zip on success, tell the owner on completion. A job
// of the batch may wait for another: the album page is published as soon as the cover (the first resize) succeeded.
// The batch and all its jobs are inserted in one transaction: no worker can see a half-built batch.
await host.StartAsync();
var batch = await client.StartBatchAsync(b =>
{
    b.Description = "album 42: thumbnails";
    JobRef? cover = null;
    foreach (var photo in Directory.EnumerateFiles(originals).Order())
    {
        var resize = b.Add<ResizeImage, ResizeArgs>(new ResizeArgs(photo, thumbnails, 400));
        cover ??= resize;
    }

    b.Add<PublishAlbum, PublishArgs>(new PublishArgs(zip), new EnqueueOptions { After = cover!.Value });
    b.OnSuccess<ZipAlbum, ZipArgs>(new ZipArgs("42", thumbnails, zip));
    b.OnComplete<NotifyOwner, NotifyArgs>(new NotifyArgs("42"));
});

Console.WriteLine($"Keel workflows sample in {work}: batch {batch} of {Images} resizes and a publish, then a zip; workers are running them:");
BatchInfo? info = null;
while (stopwatch.Elapsed < TimeSpan.FromSeconds(60))
{
    info = await client.GetBatchAsync(batch);
    if (info!.CompletedAt is not null && File.Exists(zip))
    {
        break;
    }

    await Task.Delay(200);
}

await Task.Delay(500); // let the completion callback print
await host.StopAsync();
Console.WriteLine();
Console.WriteLine($"Done in {stopwatch.Elapsed.TotalSeconds:0.0}s: batch {batch} is {info!.State.ToString().ToLowerInvariant()} ({info.Succeeded} of {info.Total}); zip {(File.Exists(zip) ? "written" : "missing")}.");
var ok = info.State == BatchState.Succeeded && File.Exists(zip);
Directory.Delete(work, recursive: true);
return ok ? 0 : 1;
