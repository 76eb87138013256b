using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Keel.Bench;

// keel-bench <scenario|all> [--engine sqlite|postgres|mysql|both|all] [--jobs N] [--workers W] [--threads T] [--runs R]
//            [--connection CS] [--json out.json] [--smoke] [--big] [--backlog N,N,…] [--recovery CASES,SETTINGS] [--rtt MS,MS,…] [--statements] [--variants "SETTINGS|SETTINGS"]
const string Usage = "usage: Keel.Bench <enqueue|throughput|latency|backlog|batch|hangfire|recovery|processes|cancel|progress|all> [--engine sqlite|postgres|mysql|both|all] [--jobs N] [--workers W] [--threads T] [--runs R] [--connection CS] [--json out.json] [--smoke] [--big] [--backlog N,N,...] [--recovery " + Recovery.Usage + "] [--rtt MS,MS,... (PostgreSQL throughput through a delaying proxy; 0 = direct)] [--statements] [--variants \"SETTINGS|SETTINGS\" (A/B arms: throughput ClaimAhead=N, DirectHandOff=true|false and Npgsql settings, latency DirectHandOff=true|false; ; between; empty = as is)]";
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (Child.IsChildCommand(args))
{
    return await Child.RunAsync(args); // the bench's own child processes (enqueuer, process-mode Keel app)
}

string? scenario = null, engineArg = null, connection = null, json = null;
int? jobs = null;
int workers = 1, threads = 10, runs = 3;
bool smoke = false, big = false, statements = false;
int[]? backlog = null;
double[] rtts = [0];
string[] variants = [""];
string? recovery = null;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        int NextInt() => int.TryParse(Next(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : throw new ArgumentException($"{args[i - 1]} needs a positive integer");
        switch (args[i])
        {
            case "--engine": engineArg = Next(); break;
            case "--jobs": jobs = NextInt(); break;
            case "--workers": workers = NextInt(); break;
            case "--threads": threads = NextInt(); break;
            case "--runs": runs = NextInt(); break;
            case "--connection": connection = Next(); break;
            case "--json": json = Next(); break;
            case "--smoke": smoke = true; break;
            case "--big": big = true; break;
            case "--statements": statements = true; break;
            case "--variants": variants = [.. Next().Split('|').Select(v => v.Trim())]; break;
            case "--rtt":
                rtts = [.. Next().Split(',').Select(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0 && ms <= 1_000 ? ms : throw new ArgumentException("--rtt needs round trips in milliseconds (0 to 1000) separated by commas, e.g. 0,0.5,2"))];
                break;
            case "--backlog":
                backlog = [.. Next().Split(',').Select(v => int.TryParse(v.Replace("_", "", StringComparison.Ordinal), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new ArgumentException("--backlog needs positive integers separated by commas"))];
                break;
            case "--recovery":
                recovery = Next();
                _ = Recovery.Parse(recovery); // throws with the accepted values
                break;
            case "-h" or "--help": Console.WriteLine(Usage); return 0;
            default:
                if (args[i].StartsWith('-') || scenario is not null)
                {
                    throw new ArgumentException($"unexpected argument '{args[i]}'");
                }

                scenario = args[i];
                break;
        }
    }

    if (scenario is null || (scenario != "all" && !Scenarios.All.Contains(scenario)))
    {
        throw new ArgumentException(scenario is null ? "no scenario given" : $"unknown scenario '{scenario}'");
    }

    if (engineArg is not (null or "sqlite" or "postgres" or "mysql" or "both" or "all"))
    {
        throw new ArgumentException($"unknown engine '{engineArg}'");
    }
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync("keel-bench: " + e.Message);
    await Console.Error.WriteLineAsync(Usage);
    return 2;
}

if (smoke)
{
    runs = 1;
}

var settings = new BenchSettings(jobs, workers, threads, runs, smoke, big, backlog, recovery) { Rtts = rtts, ShowStatements = statements, Variants = variants };
var scenarios = scenario == "all" ? Scenarios.All : [scenario];
// No --engine: SQLite and PostgreSQL ("both"); the smoke run (CI) adds MariaDB, at enqueue, throughput and latency only.
string[] engines = engineArg switch
{
    "all" => ["sqlite", "postgres", "mysql"],
    null when smoke => ["sqlite", "postgres", "mysql"],
    null or "both" => ["sqlite", "postgres"],
    _ => [engineArg],
};
var total = Stopwatch.StartNew();
var report = new List<object>();
var failed = false;

Console.WriteLine($"Keel.Bench: {string.Join(", ", scenarios)} on {string.Join(", ", engines)}; {runs} run(s) each{(smoke ? " (smoke sizes)" : "")}");
Console.WriteLine($"machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
Console.WriteLine("the bench and the workers share one process, except for the enqueuer child (latency, hangfire) and the apps of the recovery scenario (process mode and plain hosts); PostgreSQL and MariaDB (if any) run on the same machine");
foreach (var engineName in engines)
{
    BenchEngine? engine = null;
    try
    {
        engine = await BenchEngine.CreateAsync(engineName, connection);
        var description = await engine.DescribeAsync();
        Console.WriteLine();
        Console.WriteLine($"== {engineName}: " + string.Join(", ", description.Select(d => $"{d.Key}={d.Value}")));
        Console.WriteLine($"   pickup from another process: {engine.Pickup}");
        var rows = new List<(string Scenario, string Metric, string Unit, List<double> Values, string? Row, string? Column)>();
        foreach (var name in scenarios)
        {
            if (Scenarios.Unsupported(name, engine, settings) is { } reason)
            {
                Console.WriteLine($"   {name}: skipped on {engineName} ({reason})");
                continue;
            }

            for (var run = 1; run <= runs; run++)
            {
                var watch = Stopwatch.StartNew();
                Console.Write($"   {name} run {run}/{runs} ... ");
                var samples = await Scenarios.RunOnceAsync(name, engine, settings);
                Console.WriteLine(samples.Any(x => x.Row is not null)
                    ? $"   {name} run {run}/{runs}: {watch.Elapsed.TotalSeconds:F1} s, {samples.Select(x => x.Row).Distinct().Count()} cases"
                    : $"{watch.Elapsed.TotalSeconds:F1} s: " + string.Join("; ", samples.Select(x => $"{x.Value:N1} {x.Unit}")));
                if (samples.Any(x => x.Column == Recovery.FailedColumn))
                {
                    failed = true;
                }

                foreach (var sample in samples)
                {
                    var row = rows.FindIndex(r => r.Scenario == name && r.Metric == sample.Metric);
                    if (row < 0)
                    {
                        rows.Add((name, sample.Metric, sample.Unit, [sample.Value], sample.Row, sample.Column));
                    }
                    else
                    {
                        rows[row].Values.Add(sample.Value);
                    }
                }
            }
        }

        // Scenarios with a table of their own (recovery) print it; the others share the metric table.
        Recovery.PrintTable(engineName, [.. rows.Where(r => r.Row is not null).Select(r => (r.Row!, r.Column!, r.Unit, r.Values))], runs);
        if (rows.Any(r => r.Row is null))
        {
            Console.WriteLine();
            Console.WriteLine($"| engine | scenario | metric | median | min–max | unit |");
            Console.WriteLine($"|---|---|---|---:|---:|---|");
        }

        foreach (var (name, metric, unit, values, tableRow, tableColumn) in rows)
        {
            var sorted = values.Order().ToArray();
            var median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
            var format = unit switch { "jobs/s" or "bytes" => "N0", "x" or "stmts" or "commits" or "rows" => "F2", "ms" when median < 1 => "F3", _ => "F1" };
            if (tableRow is null)
            {
                Console.WriteLine($"| {engineName} | {name} | {metric} | {median.ToString(format, CultureInfo.InvariantCulture)} | {sorted[0].ToString(format, CultureInfo.InvariantCulture)}–{sorted[^1].ToString(format, CultureInfo.InvariantCulture)} | {unit} |");
                report.Add(new { engine = engineName, scenario = name, metric, unit, median, min = sorted[0], max = sorted[^1], values });
            }
            else
            {
                var parts = tableRow.Split(" | ");
                report.Add(new { engine = engineName, scenario = name, metric, unit, median, min = sorted[0], max = sorted[^1], values, @case = parts[0], liveness = parts[^1], column = tableColumn });
            }
        }

        report.Add(new { engine = engineName, settings = description.ToDictionary(d => d.Key, d => d.Value) });
    }
    catch (Exception e)
    {
        failed = true;
        Console.WriteLine();
        await Console.Error.WriteLineAsync($"keel-bench: {engineName} failed: {e}");
    }
    finally
    {
        if (engine is not null)
        {
            await engine.DisposeAsync();
        }
    }
}

if (json is not null)
{
    await File.WriteAllTextAsync(json, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
}

Console.WriteLine();
Console.WriteLine($"keel-bench: {(failed ? "FAILED" : "ok")} in {total.Elapsed.TotalSeconds:F1} s");
return failed ? 1 : 0;
