using System.Diagnostics;
using System.Globalization;

namespace Keel.DashboardBench;

/// <summary>Requests each page a few times to warm up, then <c>requests</c> times, and prints the timings.</summary>
internal static class PageTimer
{
    public static async Task<int> RunAsync(string baseUrl, long jobs, int requests)
    {
        var middle = (jobs / 2).ToString(CultureInfo.InvariantCulture);
        var failedJob = "900";
        var pages = new (string Name, string Path)[]
        {
            ("overview", "/"),
            ("queues", "/queues"),
            ("ready", "/jobs/ready"),
            ("ready, page in the middle", "/jobs/ready?before=" + middle),
            ("scheduled", "/jobs/scheduled"),
            ("in progress", "/jobs/in-progress"),
            ("blocked", "/jobs/blocked"),
            ("failed", "/jobs/failed"),
            ("failed, queue + error type", "/jobs/failed?queue=billing&error=System.TimeoutException"),
            ("failed, last 2 hours", "/jobs/failed?from=" + Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-2).ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture))),
            ("finished", "/jobs/finished"),
            ("finished, kind filter", "/jobs/finished?kind=billing.charge"),
            ("finished, page in the middle", "/jobs/finished?before=" + middle),
            ("discarded", "/jobs/discarded"),
            ("job detail", "/job/" + failedJob),
            ("processes", "/processes"),
            ("recurring", "/recurring"),
        };
        using var http = new HttpClient();
        var failures = 0;
        Console.WriteLine($"{"page",-30} {"median ms",10} {"p95 ms",8} {"max ms",8}  bytes");
        foreach (var (name, path) in pages)
        {
            var timings = new List<double>();
            var bytes = 0;
            for (var i = 0; i < requests + 2; i++)
            {
                var watch = Stopwatch.StartNew();
                using var response = await http.GetAsync(baseUrl + path);
                var body = await response.Content.ReadAsByteArrayAsync();
                watch.Stop();
                if (!response.IsSuccessStatusCode)
                {
                    Console.WriteLine($"{name}: HTTP {(int)response.StatusCode}");
                    failures++;
                    break;
                }

                bytes = body.Length;
                if (i >= 2)
                {
                    timings.Add(watch.Elapsed.TotalMilliseconds);
                }
            }

            if (timings.Count == 0)
            {
                continue;
            }

            timings.Sort();
            var median = timings[timings.Count / 2];
            var p95 = timings[Math.Min(timings.Count - 1, (int)Math.Ceiling(timings.Count * 0.95) - 1)];
            Console.WriteLine($"{name,-30} {median,10:0.0} {p95,8:0.0} {timings[^1],8:0.0}  {bytes,6}");
        }

        return failures;
    }
}
