using System.Diagnostics;
using System.Globalization;

namespace Keel.Bench;

/// <summary>What one recovery case measured (one run, one setting).</summary>
public sealed class Outcome(string title, string settings, bool takeover)
{
    public string Case { get; } = title;

    public string Settings { get; } = settings;

    /// <summary>True when the fault takes a worker out and its jobs must start again elsewhere; false when nothing may be taken over.</summary>
    public bool Takeover { get; } = takeover;

    /// <summary>Jobs in flight in the process the fault took out.</summary>
    public int? JobsLost { get; set; }

    /// <summary>Ms from the fault until the last of those jobs had its claim recovered (ready again), per the database.</summary>
    public double? RecoveredMs { get; set; }

    /// <summary>Ms from the fault until the first of those jobs started again in another process.</summary>
    public double? TakeoverFirstMs { get; set; }

    /// <summary>Ms from the fault until every one of them had started again (a suspect runs alone: they start one after another).</summary>
    public double? TakeoverAllMs { get; set; }

    /// <summary>A fault that must not cause a takeover: ms from the fault until the app it hit started a job again (the longest over the rounds).</summary>
    public double? ResumedMs { get; set; }

    /// <summary>Seconds during which two processes ran the same job at once, summed over the jobs (from the run logs).</summary>
    public double OverlapSeconds { get; set; }

    /// <summary>Processes pruned (by maintenance or a supervisor) that the fault did not take out.</summary>
    public long LivePruned { get; set; }

    /// <summary>Ordinary jobs charged a worker loss (none of them ever kills its worker).</summary>
    public long UncausedCharges { get; set; }

    /// <summary>Jobs started more than once, the ones the fault took away (and, for poison, the poison jobs) excepted.</summary>
    public long Reruns { get; set; }

    /// <summary>Ordinary jobs that failed (poison: or were charged a worker loss).</summary>
    public long CollateralFailures { get; set; }

    /// <summary>Case-specific values: (name, unit, value).</summary>
    public List<(string Name, string Unit, double Value)> Extra { get; } = [];

    public List<string> Notes { get; } = [];

    public string Row => $"{Case} | {Settings}";

    public IEnumerable<Sample> ToSamples()
    {
        Sample Make(string column, string unit, double value) => new($"{Case}, {Settings}: {column}", unit, value) { Row = Row, Column = column };
        if (JobsLost is { } lost)
        {
            yield return Make(Recovery.JobsLostColumn, "jobs", lost);
        }

        if (RecoveredMs is { } recovered)
        {
            yield return Make(Recovery.RecoveredColumn, "ms", recovered);
        }

        if (TakeoverFirstMs is { } first)
        {
            yield return Make(Recovery.TakeoverFirstColumn, "ms", first);
        }

        if (TakeoverAllMs is { } all)
        {
            yield return Make(Recovery.TakeoverAllColumn, "ms", all);
        }

        if (ResumedMs is { } resumed)
        {
            yield return Make(Recovery.ResumedColumn, "ms", resumed);
        }

        yield return Make(Recovery.OverlapColumn, "s", OverlapSeconds);
        yield return Make(Recovery.PrunedColumn, "processes", LivePruned);
        yield return Make(Recovery.ChargesColumn, "jobs", UncausedCharges);
        yield return Make(Recovery.RerunsColumn, "jobs", Reruns);
        yield return Make(Recovery.CollateralColumn, "jobs", CollateralFailures);
        foreach (var (name, unit, value) in Extra)
        {
            yield return Make(name, unit, value);
        }
    }

    /// <summary>One line for the progress output.</summary>
    public string Summary()
    {
        var time = Takeover
            ? $"claims of {JobsLost} jobs recovered after {Recovery.Ms(RecoveredMs)}, started again after {Recovery.Ms(TakeoverFirstMs)} (first) to {Recovery.Ms(TakeoverAllMs)} (every one)"
            : ResumedMs is { } r ? $"no takeover, work resumed after {Recovery.Ms(r)}" : "no takeover";
        return string.Create(CultureInfo.InvariantCulture, $"{time}; overlap {OverlapSeconds:0.###} s; {LivePruned} live processes pruned; {UncausedCharges} uncaused charges; {Reruns} re-runs; {CollateralFailures} collateral failures")
            + string.Concat(Extra.Select(e => string.Create(CultureInfo.InvariantCulture, $"; {e.Name} {e.Value:0.##}")));
    }
}

/// <summary>One fault or lifecycle case of the recovery scenario.</summary>
/// <param name="Key">Its name in <c>--recovery</c>.</param>
/// <param name="Title">Its row in the table.</param>
/// <param name="PostgresOnly">Runs on PostgreSQL only.</param>
/// <param name="OwnServer">Needs a PostgreSQL server the bench started (not one given by <c>--connection</c>).</param>
/// <param name="Group"><c>faults</c>, <c>deploy</c> or <c>poison</c>.</param>
/// <param name="Run">Runs it once with the given settings.</param>
public sealed record RecoveryCase(string Key, string Title, bool PostgresOnly, bool OwnServer, string Group, Func<BenchEngine, Liveness, BenchSettings, Task<Outcome>> Run);

/// <summary>
/// The recovery scenario: real Keel processes (this executable as a process-mode app or a plain host) put through the
/// faults of DESIGN §2.4–2.9 — kill -9 and SIGSTOP of a worker, a killed standalone host, and on PostgreSQL dropped
/// connections, connections reset by a proxy, a crash-restart, a failover to a promoted standby, a worker black-holed
/// past its lease, PgBouncer in transaction mode with a worker killed — and through deploys (SIGTERM restarts while
/// short jobs drain) and poison jobs (jobs that kill their worker). Each case reports the time to takeover (or, for a
/// fault that must not cause one, the time until work resumes), the overlap seconds from the jobs' run logs, live
/// processes pruned, jobs charged a worker loss they did not cause, re-runs and collateral failures.
/// </summary>
public static class Recovery
{
    public const string JobsLostColumn = "jobs taken away";
    public const string RecoveredColumn = "claims recovered";
    public const string TakeoverFirstColumn = "takeover, first job";
    public const string TakeoverAllColumn = "takeover, every job";
    public const string ResumedColumn = "work resumed";
    public const string OverlapColumn = "overlap";
    public const string PrunedColumn = "live processes pruned";
    public const string ChargesColumn = "uncaused charges";
    public const string RerunsColumn = "re-runs";
    public const string CollateralColumn = "collateral failures";
    public const string FailedColumn = "failed";

    public const string Usage = "faults|deploy|poison|all, or cases (kill, standalone, sigstop, dropped, reset, crash-restart, failover, black-hole, pgbouncer), with defaults|fast|both; comma-separated";

    public static readonly RecoveryCase[] Cases =
    [
        new("kill", "kill -9 of a worker, under its supervisor", false, false, "faults", RecoveryCases.KillAsync),
        new("standalone", "kill -9 of a standalone host (no supervisor)", false, false, "faults", RecoveryCases.StandaloneAsync),
        new("sigstop", "SIGSTOP of a worker (frozen past its lease)", false, false, "faults", RecoveryCases.SigstopAsync),
        new("dropped", "dropped connections (pg_terminate_backend)", true, false, "faults", RecoveryCases.DroppedAsync),
        new("reset", "connections reset by a proxy", true, false, "faults", RecoveryCases.ResetAsync),
        new("crash-restart", "PostgreSQL crash-restart", true, true, "faults", RecoveryCases.CrashRestartAsync),
        new("failover", "failover to a promoted standby", true, true, "faults", RecoveryCases.FailoverAsync),
        new("black-hole", "a worker black-holed past its lease", true, false, "faults", RecoveryCases.BlackHoleAsync),
        new("pgbouncer", "PgBouncer (transaction mode), worker killed", true, true, "faults", RecoveryCases.PgBouncerAsync),
        new("deploy", "deploy: SIGTERM restarts while short jobs drain", false, false, "deploy", RecoveryCases.DeployAsync),
        new("poison", "poison jobs (SIGKILL, FailFast)", false, false, "poison", RecoveryCases.PoisonAsync),
    ];

    /// <summary>Parses <c>--recovery</c>: cases or groups, and settings, comma-separated. Throws <see cref="ArgumentException"/> for anything else.</summary>
    public static (HashSet<string> Cases, Liveness[] Settings) Parse(string? value)
    {
        var cases = new HashSet<string>(StringComparer.Ordinal);
        Liveness[]? settings = null;
        foreach (var token in (value ?? "all").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (token)
            {
                case "all": cases.UnionWith(Cases.Select(c => c.Key)); break;
                case "faults" or "deploy" or "poison": cases.UnionWith(Cases.Where(c => c.Group == token).Select(c => c.Key)); break;
                case "defaults": settings = [.. settings ?? [], Liveness.Defaults]; break;
                case "fast": settings = [.. settings ?? [], Liveness.Fast]; break;
                case "both": settings = [Liveness.Defaults, Liveness.Fast]; break;
                default:
                    if (Cases.All(c => c.Key != token))
                    {
                        throw new ArgumentException($"--recovery: unknown '{token}' (expected {Usage})");
                    }

                    cases.Add(token);
                    break;
            }
        }

        if (cases.Count == 0)
        {
            cases.UnionWith(Cases.Select(c => c.Key));
        }

        return (cases, [.. (settings ?? [Liveness.Defaults, Liveness.Fast]).Distinct()]);
    }

    public static async Task<List<Sample>> RunAsync(BenchEngine engine, BenchSettings s)
    {
        Console.WriteLine();
        HashSet<string> keys;
        Liveness[] settings;
        if (s.Smoke && s.Recovery is null)
        {
            // A representative subset at tiny sizes, for CI: a kill -9 on both engines, a poison job on SQLite, a proxy
            // reset and a deploy on PostgreSQL.
            keys = engine.IsPostgres ? ["kill", "reset", "deploy"] : ["kill", "poison"];
            settings = [Liveness.Fast];
        }
        else
        {
            (keys, settings) = Parse(s.Recovery);
        }

        var samples = new List<Sample>();
        var skipped = new List<string>();
        foreach (var c in Cases.Where(c => keys.Contains(c.Key)))
        {
            if (c.PostgresOnly && !engine.IsPostgres)
            {
                skipped.Add(c.Key);
                continue;
            }

            if (c.OwnServer && engine.Server is null)
            {
                Console.WriteLine($"      {c.Title}: skipped (needs a PostgreSQL server the bench starts itself, not --connection)");
                continue;
            }

            foreach (var liveness in settings)
            {
                var watch = Stopwatch.StartNew();
                Console.Write($"      {c.Title}, {liveness.Name} ... ");
                try
                {
                    var outcome = await c.Run(engine, liveness, s);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{watch.Elapsed.TotalSeconds:F1} s: {outcome.Summary()}"));
                    foreach (var note in outcome.Notes)
                    {
                        Console.WriteLine($"         note: {note}");
                    }

                    samples.AddRange(outcome.ToSamples());
                }
                catch (CaseSkippedException e)
                {
                    Console.WriteLine($"skipped: {e.Message}");
                    break;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{watch.Elapsed.TotalSeconds:F1} s: FAILED"));
                    await Console.Error.WriteLineAsync($"keel-bench: recovery case '{c.Key}' ({liveness.Name}) on {engine.Name} failed: {e}");
                    var row = $"{c.Title} | {liveness.Name}";
                    samples.Add(new Sample($"{c.Title}, {liveness.Name}: {FailedColumn}", FailedColumn, 1) { Row = row, Column = FailedColumn });
                }
            }
        }

        if (skipped.Count > 0)
        {
            Console.WriteLine($"      PostgreSQL-only faults skipped on {engine.Name}: {string.Join(", ", skipped)} (run them with --engine postgres)");
        }

        return samples;
    }

    /// <summary>The per-engine table of the recovery rows: one line per case and setting, medians with their range.</summary>
    public static void PrintTable(string engine, IReadOnlyList<(string Row, string Column, string Unit, List<double> Values)> cells, int runs)
    {
        if (cells.Count == 0)
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine($"Crash recovery on {engine}{(runs > 1 ? $" (median of {runs} runs, min–max)" : string.Empty)}:");
        Console.WriteLine();
        Console.WriteLine("| fault | settings | jobs taken away | claims recovered after | time to takeover (first job / every job) | overlap s | live processes pruned | uncaused charges | re-runs | collateral failures |");
        Console.WriteLine("|---|---|---:|---:|---|---:|---:|---:|---:|---:|");
        var extras = new List<string>();
        foreach (var row in cells.Select(c => c.Row).Distinct())
        {
            var mine = cells.Where(c => c.Row == row).ToDictionary(c => c.Column, c => c.Values);
            var parts = row.Split(" | ");
            if (mine.ContainsKey(FailedColumn))
            {
                Console.WriteLine($"| {parts[0]} | {parts[1]} | FAILED (see the error above) | | | | | | | |");
                continue;
            }

            string Cell(string column, Func<double, string> format)
            {
                if (!mine.TryGetValue(column, out var values))
                {
                    return "–";
                }

                var sorted = values.Order().ToArray();
                var median = Median(sorted);
                return sorted.Length > 1 && sorted[0] != sorted[^1] ? $"{format(median)} ({format(sorted[0])}–{format(sorted[^1])})" : format(median);
            }

            static string Count(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
            var takeover = mine.ContainsKey(TakeoverFirstColumn)
                ? $"{Cell(TakeoverFirstColumn, Ms)} / {Cell(TakeoverAllColumn, Ms)}"
                : mine.ContainsKey(ResumedColumn) ? $"none; work resumed after {Cell(ResumedColumn, Ms)}" : "none";
            Console.WriteLine($"| {parts[0]} | {parts[1]} | {Cell(JobsLostColumn, Count)} | {Cell(RecoveredColumn, Ms)} | {takeover} | {Cell(OverlapColumn, v => v.ToString("0.###", CultureInfo.InvariantCulture))} | {Cell(PrunedColumn, Count)} | {Cell(ChargesColumn, Count)} | {Cell(RerunsColumn, Count)} | {Cell(CollateralColumn, Count)} |");
            foreach (var (column, values) in mine.Where(m => !IsMainColumn(m.Key)))
            {
                var unit = cells.First(c => c.Row == row && c.Column == column).Unit;
                extras.Add($"- {parts[0]}, {parts[1]}: {column}: {Cell(column, v => unit == "ms" ? Ms(v) : Count(v) + " " + unit)}");
            }
        }

        if (extras.Count > 0)
        {
            Console.WriteLine();
            foreach (var extra in extras)
            {
                Console.WriteLine(extra);
            }
        }
    }

    public static string Ms(double? ms)
        => ms switch
        {
            null => "–",
            >= 10_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.0} s"),
            >= 1_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.00} s"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{ms:0} ms"),
        };

    private static string Ms(double ms) => Ms((double?)ms);

    private static bool IsMainColumn(string column)
        => column is JobsLostColumn or RecoveredColumn or TakeoverFirstColumn or TakeoverAllColumn or ResumedColumn or OverlapColumn or PrunedColumn or ChargesColumn or RerunsColumn or CollateralColumn;

    private static double Median(double[] sorted)
        => sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}
