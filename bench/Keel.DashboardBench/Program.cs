// Dashboard speed: fills a database with a million jobs, serves the dashboard over it and times every page.
//   dotnet run -c Release --project bench/Keel.DashboardBench -- [sqlite|postgresql|all] [--jobs 1000000] [--requests 20] [--spread-hours 24] [--smoke] [--hold]
// Prints median, p95 and max milliseconds per page (client-side, over loopback HTTP). PostgreSQL is a throwaway
// server started by Keel.TestInfrastructure (KEEL_TEST_POSTGRES names an existing one).
using System.Diagnostics;
using System.Globalization;
using Keel.DashboardBench;

var engines = new List<string>();
long jobs = 1_000_000;
var requests = 20;
var spread = TimeSpan.FromHours(24);
var hold = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "sqlite" or "postgresql":
            engines.Add(args[i]);
            break;
        case "all":
            engines.AddRange(["sqlite", "postgresql"]);
            break;
        case "--jobs":
            jobs = long.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--requests":
            requests = int.Parse(args[++i], CultureInfo.InvariantCulture);
            break;
        case "--spread-hours":
            spread = TimeSpan.FromHours(double.Parse(args[++i], CultureInfo.InvariantCulture));
            break;
        case "--hold":
            hold = true; // keep the database until Enter, to look at query plans
            break;
        case "--smoke":
            jobs = 20_000;
            requests = 3;
            break;
        default:
            await Console.Error.WriteLineAsync($"unknown argument '{args[i]}'; usage: [sqlite|postgresql|all] [--jobs N] [--requests N] [--spread-hours H] [--smoke]");
            return 2;
    }
}

if (engines.Count == 0)
{
    engines.AddRange(["sqlite", "postgresql"]);
}

var failures = 0;
foreach (var engine in engines)
{
    await using var target = await BenchDatabase.CreateAsync(engine);
    Console.WriteLine($"## {engine}: {jobs:N0} jobs over the last {spread.TotalHours:0.#} h");
    var load = Stopwatch.StartNew();
    await BulkLoad.LoadAsync(target.Storage, target.Connection, jobs, spread);
    Console.WriteLine($"loaded in {load.Elapsed.TotalSeconds:0.0} s");

    await using var server = await DashboardServer.StartAsync(engine, target.Database);
    var result = await PageTimer.RunAsync(server.BaseUrl, jobs, requests);
    failures += result;
    Console.WriteLine();
    await StorageTimer.RunAsync(target.Storage, requests);
    if (hold)
    {
        Console.WriteLine($"database: {target.Database} — press Enter to drop it");
        Console.ReadLine();
    }

    Console.WriteLine();
}

return failures == 0 ? 0 : 1;
