using System.Diagnostics;
using Keel.Storage;

namespace Keel.DashboardBench;

/// <summary>Times the storage reads the overview makes, one by one, to show where a page's time goes.</summary>
internal static class StorageTimer
{
    public static async Task RunAsync(IKeelStorage storage, int requests)
    {
        var now = DateTimeOffset.UtcNow;
        var since = new DateTimeOffset(now.UtcTicks - (now.UtcTicks % TimeSpan.TicksPerMinute), TimeSpan.Zero).AddMinutes(-59);
        var reads = new (string Name, Func<Task> Read)[]
        {
            ("JobsCountAsync (cap 10,000)", () => storage.JobsCountAsync(new JobsCountParams(10_000), CancellationToken.None)),
            ("JobsActivityAsync (60 × 1 min)", () => storage.JobsActivityAsync(new JobsActivityParams(since, TimeSpan.FromMinutes(1), 60), CancellationToken.None)),
            ("QueuesListAsync", () => storage.QueuesListAsync(null, CancellationToken.None)),
            ("ProcessesListAsync", () => storage.ProcessesListAsync(new ProcessesListParams(null, null), CancellationToken.None)),
        };
        Console.WriteLine($"{"overview read",-30} {"median ms",10} {"p95 ms",8}");
        foreach (var (name, read) in reads)
        {
            var timings = new List<double>();
            for (var i = 0; i < requests + 2; i++)
            {
                var watch = Stopwatch.StartNew();
                await read();
                if (i >= 2)
                {
                    timings.Add(watch.Elapsed.TotalMilliseconds);
                }
            }

            timings.Sort();
            Console.WriteLine($"{name,-30} {timings[timings.Count / 2],10:0.0} {timings[Math.Min(timings.Count - 1, (int)Math.Ceiling(timings.Count * 0.95) - 1)],8:0.0}");
        }
    }
}
