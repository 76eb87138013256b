// Keel sample: enqueue a mix of jobs into an embedded SQLite database and watch workers run them.
// Run it with: dotnet run --project samples/Keel.Sample
using System.Diagnostics;
using Keel;
using Keel.Hosting;
using Keel.Sample;
using Keel.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var databasePath = Path.Combine(Environment.CurrentDirectory, "keel-sample.db");
foreach (var suffix in new[] { "", "-wal", "-shm" })
{
    File.Delete(databasePath + suffix);
}

var builder = Host.CreateApplicationBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Keel", LogLevel.Error);
builder.Services.AddKeel(keel => keel
    .UseSqlite(databasePath)
    .AddJob<SendWelcomeEmail>()
    .AddJob<GenerateReport>()
    .AddJob<ChargeCard>(job => job.Backoff = new BackoffOptions { Base = TimeSpan.FromSeconds(1) })
    .Configure(options =>
    {
        options.Workers.Add(new WorkerOptions { Queues = ["mail", "*"], Threads = 5, PollingInterval = TimeSpan.FromMilliseconds(200) });
        options.Dispatcher.PollingInterval = TimeSpan.FromMilliseconds(200);
    }));

using var host = builder.Build();
await host.StartAsync();
var client = host.Services.GetRequiredService<IKeelClient>();
var stopwatch = Stopwatch.StartNew();

Console.WriteLine($"Keel sample: SQLite database {databasePath}");
var ids = new List<long>();
ids.AddRange(await client.EnqueueManyAsync(
    [.. Enumerable.Range(1, 10).Select(i => JobRequest.Create<SendWelcomeEmail, WelcomeArgs>(new WelcomeArgs($"user{i}@example.com")))]));
ids.Add(await client.EnqueueAsync<GenerateReport, ReportArgs>(new ReportArgs("monthly revenue", 2)));
ids.Add(await client.EnqueueAsync<ChargeCard, ChargeArgs>(new ChargeArgs("ACME Corp", 99.90m)));
ids.Add(await client.ScheduleAsync<SendWelcomeEmail, WelcomeArgs>(new WelcomeArgs("later@example.com"), TimeSpan.FromSeconds(3)));
Console.WriteLine($"Enqueued {ids.Count} jobs (10 quick, 1 slow, 1 flaky, 1 scheduled 3 s ahead); workers are running them:");

var jobs = new List<JobInfo>();
while (stopwatch.Elapsed < TimeSpan.FromSeconds(60))
{
    jobs.Clear();
    foreach (var id in ids)
    {
        jobs.Add((await client.GetJobAsync(id))!);
    }

    if (jobs.All(j => j.State is JobState.Finished or JobState.Failed))
    {
        break;
    }

    await Task.Delay(200);
}

await host.StopAsync();
var finished = jobs.Count(j => j.State == JobState.Finished);
var failed = jobs.Count(j => j.State == JobState.Failed);
var retried = jobs.Count(j => j.Attempts > 1);
Console.WriteLine();
Console.WriteLine($"Done in {stopwatch.Elapsed.TotalSeconds:0.0}s: {finished} finished, {failed} failed, {retried} retried, {jobs.Count - finished - failed} still pending.");
return finished == ids.Count ? 0 : 1;
