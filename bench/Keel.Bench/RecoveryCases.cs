using System.Diagnostics;
using System.Globalization;
using Keel.TestInfrastructure;
using Npgsql;

namespace Keel.Bench;

/// <summary>
/// The recovery scenario's cases. A fault that takes a worker out (kill -9, SIGSTOP, a black hole, a killed host)
/// hits a process running at least two held jobs while every other process is idle (its held jobs released first),
/// and measures from the fault until each of those jobs starts again elsewhere: they come back as suspects, which run
/// one at a time, so the bench releases each as soon as it has started. A fault that must not cause a takeover runs
/// through a stream of short jobs and a few held ones, hitting a <c>target</c> app while an <c>observer</c> app (whose
/// maintenance could wrongly prune the target) works on, and measures how long the target takes to start a job again.
/// </summary>
/// <summary>A case that cannot run on this machine (a program is missing); reported as skipped, not failed.</summary>
public sealed class CaseSkippedException(string message) : Exception(message);

public static class RecoveryCases
{
    private const int ShortJobMilliseconds = 200;

    public static Task<Outcome> KillAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
        => SupervisedAsync(engine, liveness, s, "kill", Child.SIGKILL);

    public static Task<Outcome> SigstopAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
        => SupervisedAsync(engine, liveness, s, "sigstop", Child.SIGSTOP);

    /// <summary>A supervisor with two worker processes of 25 threads; the worker running the most held jobs is signalled.</summary>
    private static async Task<Outcome> SupervisedAsync(BenchEngine engine, Liveness liveness, BenchSettings s, string key, int signal)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var outcome = new Outcome(Title(key), liveness.Name, takeover: true);
        var app = scene.StartApp("app", workers: 2, threads: 25);
        await scene.WaitRegisteredAsync(app, 2);
        var held = await scene.EnqueueHeldAsync(s.Smoke ? 4 : 6);
        await scene.WaitStartedAsync(held);
        var (victim, jobs) = await scene.PickVictimAsync(held);
        await InterruptAsync(scene, outcome, victim, jobs, signal);
        return await scene.FinishAsync(outcome);
    }

    /// <summary>Two plain hosts (AddKeel, worker and dispatcher in-process), no supervisor: one of them is killed.</summary>
    public static async Task<Outcome> StandaloneAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var outcome = new Outcome(Title("standalone"), liveness.Name, takeover: true);
        var first = scene.StartApp("host-1", workers: 1, threads: 25, standalone: true);
        var second = scene.StartApp("host-2", workers: 1, threads: 25, standalone: true);
        await scene.WaitRegisteredAsync(first, 1);
        await scene.WaitRegisteredAsync(second, 1);
        var held = await scene.EnqueueHeldAsync(s.Smoke ? 4 : 6);
        await scene.WaitStartedAsync(held);
        var (victim, jobs) = await scene.PickVictimAsync(held);
        await InterruptAsync(scene, outcome, victim, jobs, Child.SIGKILL);
        return await scene.FinishAsync(outcome);
    }

    /// <summary>Both apps reach PostgreSQL through PgBouncer in transaction mode (lease liveness); a worker running jobs is killed.</summary>
    public static async Task<Outcome> PgBouncerAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        if (!File.Exists(PgBouncerServer.DefaultBinary) && !path.Any(d => File.Exists(Path.Combine(d, "pgbouncer"))))
        {
            throw new CaseSkippedException("pgbouncer is not installed (apt-get install -y pgbouncer)");
        }

        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var outcome = new Outcome(Title("pgbouncer"), liveness.Name, takeover: true);
        var bouncer = scene.Own(await PgBouncerServer.StartAsync(engine.Server!, new PgBouncerOptions { DefaultPoolSize = 20, ServerLifetime = TimeSpan.FromSeconds(1), ServerIdleTimeout = TimeSpan.FromSeconds(1) }));
        // What docs/operations.md asks of a connection string behind a transaction-mode PgBouncer older than 1.21.
        var pooled = new NpgsqlConnectionStringBuilder(bouncer.ConnectionStringFor(scene.Database)) { MaxAutoPrepare = 0 }.ConnectionString;
        var target = scene.StartApp("target", workers: 2, threads: 25, pooled);
        var observer = scene.StartApp("observer", workers: 1, threads: 25, pooled);
        await scene.WaitRegisteredAsync(target, 2);
        await scene.WaitRegisteredAsync(observer, 1);
        var held = await scene.EnqueueHeldAsync(s.Smoke ? 4 : 6);
        await scene.WaitStartedAsync(held);
        var (victim, jobs) = await scene.PickVictimAsync(held);
        await InterruptAsync(scene, outcome, victim, jobs, Child.SIGKILL);
        return await scene.FinishAsync(outcome);
    }

    /// <summary>
    /// The target app (one worker process) reaches PostgreSQL through a proxy that black-holes it past its lease: every
    /// packet lost, nothing closed. The observer takes the jobs over once the lease has expired; by then the target must
    /// have stopped them (it fences itself at its lease's end, on its own clock). The hole ends once every job runs again.
    /// </summary>
    public static async Task<Outcome> BlackHoleAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var outcome = new Outcome(Title("black-hole"), liveness.Name, takeover: true);
        var direct = new NpgsqlConnectionStringBuilder(scene.Database);
        var proxy = scene.Own(FaultProxy.Start(direct.Host ?? "127.0.0.1", direct.Port));
        var target = scene.StartApp("target", workers: 1, threads: 25, Via(scene.Database, proxy));
        await scene.WaitRegisteredAsync(target, 1);
        var held = await scene.EnqueueHeldAsync(s.Smoke ? 2 : 4);
        await scene.WaitStartedAsync(held);
        var observer = scene.StartApp("observer", workers: 1, threads: 25);
        await scene.WaitRegisteredAsync(observer, 1);
        var (victim, jobs) = await scene.PickVictimAsync(held);
        scene.VictimApps.Add("target");
        scene.LostJobs.UnionWith(jobs);
        outcome.JobsLost = jobs.Count;

        var faultAt = DateTimeOffset.UtcNow;
        var since = Stopwatch.GetTimestamp();
        proxy.BlackHole(true);
        try
        {
            (outcome.TakeoverFirstMs, outcome.TakeoverAllMs) = await scene.TakeOverAsync(victim, jobs, since, Patience(liveness));
        }
        finally
        {
            proxy.BlackHole(false);
        }

        outcome.RecoveredMs = await scene.RecoveredAsync(jobs, faultAt);
        var hole = RecoveryScene.Milliseconds(Stopwatch.GetTimestamp() - since);
        var stopped = scene.Log().Where(l => l.Pid == victim && l.What is "cancel" or "end" && jobs.Contains(l.JobId) && l.Monotonic > since).Select(l => l.Monotonic!.Value).ToList();
        scene.Notes.Add(stopped.Count == jobs.Count
            ? $"the cut-off worker stopped its {jobs.Count} jobs {Recovery.Ms(RecoveryScene.Milliseconds(stopped.Max() - since))} into the black hole (lease {Recovery.Ms(liveness.AliveThreshold.TotalMilliseconds)}); the hole lasted {Recovery.Ms(hole)}"
            : $"the cut-off worker recorded the end of {stopped.Count} of its {jobs.Count} jobs; the hole lasted {Recovery.Ms(hole)}");
        return await scene.FinishAsync(outcome);
    }

    /// <summary>pg_terminate_backend of every session of the target app (its liveness sessions included), in rounds.</summary>
    public static async Task<Outcome> DroppedAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        return await NoTakeoverAsync(scene, "dropped", s, Named(scene.Database, "keel-target"), Named(scene.Database, "keel-observer"), TimeSpan.FromSeconds(2), async _ =>
        {
            var lockers = await engine.ScalarAsync(scene.Database, "SELECT count(DISTINCT a.pid) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted WHERE a.datname = current_database() AND a.application_name = 'keel-target'");
            var ended = await engine.ScalarAsync(scene.Database, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'keel-target'");
            return $"{ended} sessions of the target ended, {lockers} of them liveness sessions";
        });
    }

    /// <summary>The target app reaches PostgreSQL through a proxy that resets every connection (TCP RST), in rounds.</summary>
    public static async Task<Outcome> ResetAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var direct = new NpgsqlConnectionStringBuilder(scene.Database);
        var proxy = scene.Own(FaultProxy.Start(direct.Host ?? "127.0.0.1", direct.Port));
        return await NoTakeoverAsync(scene, "reset", s, Via(scene.Database, proxy), scene.Database, TimeSpan.FromSeconds(2), _ => Task.FromResult($"{proxy.ResetAll()} connections of the target reset"));
    }

    /// <summary>A server of the case's own crash-restarts (SIGKILL of one backend: every session ends, crash recovery), in rounds.</summary>
    public static async Task<Outcome> CrashRestartAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var server = await PostgresServer.StartAsync(new PostgresServerOptions { Settings = new Dictionary<string, string>(PostgresServerOptions.DurableSettings, StringComparer.Ordinal) });
        var database = await server.CreateDatabaseAsync();
        await using var scene = await RecoveryScene.StartAsync(engine, liveness, database);
        return await NoTakeoverAsync(scene, "crash-restart", s, Named(database, "keel-target"), Named(database, "keel-observer"), TimeSpan.FromSeconds(3), async _ =>
        {
            var watch = Stopwatch.StartNew();
            await server.CrashRestartAsync();
            return $"the server accepted connections again {Recovery.Ms(watch.Elapsed.TotalMilliseconds)} after a backend was killed";
        });
    }

    /// <summary>
    /// Both apps reach a primary through an address (a proxy) that moves to its synchronous standby: the primary is
    /// killed, the standby promoted, the address retargeted and the stale connections reset.
    /// </summary>
    public static async Task<Outcome> FailoverAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var primary = await PostgresServer.StartAsync(new PostgresServerOptions { Replication = true, Settings = new Dictionary<string, string>(PostgresServerOptions.DurableSettings, StringComparer.Ordinal) });
        var direct = await primary.CreateDatabaseAsync();
        await using var proxy = FaultProxy.Start(primary.Port);
        var database = Via(direct, proxy);
        await using var scene = await RecoveryScene.StartAsync(engine, liveness, database);
        var standby = scene.Own(await primary.StartStandbyAsync(synchronous: true));
        return await NoTakeoverAsync(scene, "failover", s, Named(database, "keel-target"), Named(database, "keel-observer"), TimeSpan.FromSeconds(3), async _ =>
        {
            var watch = Stopwatch.StartNew();
            await primary.KillAsync();
            await standby.PromoteAsync();
            proxy.Retarget(standby.Port);
            var reset = proxy.ResetAll();
            return $"primary killed, standby promoted and the address moved to it in {Recovery.Ms(watch.Elapsed.TotalMilliseconds)} ({reset} stale connections reset)";
        });
    }

    /// <summary>
    /// Deploys: the app is stopped with SIGTERM and started again, N times, while thousands of short jobs (5–50 ms) drain;
    /// a last start drains the rest. No job may start twice (a graceful stop finishes or releases what it runs).
    /// </summary>
    public static async Task<Outcome> DeployAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var outcome = new Outcome(Title("deploy"), liveness.Name, takeover: false);
        var random = new Random(42);
        var count = s.Jobs ?? (s.Smoke ? 300 : 5_000);
        var restarts = s.Smoke ? 2 : 10;
        await scene.EnqueueAsync([.. Enumerable.Range(0, count).Select(_ => JobRequest.Create<SleepJob, SleepArgs>(new SleepArgs(random.Next(5, 51))))]);
        var stops = new List<double>();
        var running = 0;
        for (var deploy = 1; deploy <= restarts; deploy++)
        {
            var app = scene.StartApp($"deploy-{deploy}", workers: 2, threads: 10);
            await scene.WaitRegisteredAsync(app, 2);
            await Task.Delay(s.Smoke ? random.Next(300, 600) : random.Next(500, 1500));
            running += scene.InFlight().Sum(p => p.Value.Count);
            var (code, ms) = await scene.TerminateAsync(app);
            stops.Add(ms);
            if (code != 0)
            {
                scene.Notes.Add($"deploy {deploy}: the supervisor exited with {code} on SIGTERM");
            }

            var claims = await scene.CountAsync("SELECT count(*) FROM keel_claimed_executions");
            if (claims > 0)
            {
                scene.Notes.Add($"deploy {deploy}: {claims} claims left after the stop");
            }
        }

        await scene.WaitRegisteredAsync(scene.StartApp("deploy-last", workers: 2, threads: 10), 2);
        await scene.FinishAsync(outcome, TimeSpan.FromMinutes(5));
        var started = scene.Log().Where(l => l.What == "start").Select(l => l.JobId).Distinct().Count();
        if (started != count)
        {
            scene.Notes.Add($"{started} of {count} jobs started");
        }

        stops.Sort();
        outcome.Extra.Add(("jobs", "jobs", count));
        outcome.Extra.Add(("SIGTERM restarts", "restarts", restarts));
        outcome.Extra.Add(("jobs running at the SIGTERMs (sum)", "jobs", running));
        outcome.Extra.Add(("claims released unstarted or unfinished at a stop", "claims", await scene.CountAsync("SELECT count(*) FROM keel_job_runs WHERE outcome = 'released'")));
        outcome.Extra.Add(("SIGTERM to exit, median", "ms", Scenarios.Percentile([.. stops], 0.5)));
        outcome.Extra.Add(("SIGTERM to exit, max", "ms", stops[^1]));
        outcome.Notes.AddRange(scene.Notes.Except(outcome.Notes));
        return outcome;
    }

    /// <summary>
    /// Ordinary 30 ms jobs with a few poison jobs among them: jobs that SIGKILL their own worker, and jobs that call
    /// Environment.FailFast. Every poison job must fail after its worker-loss cap, and no ordinary job may fail or be
    /// charged a loss (the jobs that shared a dying worker are released uncharged and run alone).
    /// </summary>
    public static async Task<Outcome> PoisonAsync(BenchEngine engine, Liveness liveness, BenchSettings s)
    {
        await using var scene = await RecoveryScene.StartAsync(engine, liveness);
        var outcome = new Outcome(Title("poison"), liveness.Name, takeover: false);
        var normal = s.Smoke ? 40 : 400;
        var requests = Enumerable.Range(0, normal).Select(_ => JobRequest.Create<SleepJob, SleepArgs>(new SleepArgs(30))).ToList();
        var poisonAt = s.Smoke
            ? new (double At, bool Kill)[] { (0.25, true), (0.6, false) }
            : [(0.1, true), (0.3, false), (0.5, true), (0.7, false)];
        foreach (var (at, kill) in poisonAt.Reverse())
        {
            requests.Insert((int)(normal * at), kill ? JobRequest.Create<PoisonKillJob, SleepArgs>(new SleepArgs(0)) : JobRequest.Create<PoisonFailFastJob, SleepArgs>(new SleepArgs(0)));
        }

        var ids = await scene.EnqueueAsync(requests);
        var poison = ids.Where((_, i) => requests[i].JobType != typeof(SleepJob)).ToHashSet();
        scene.LostJobs.UnionWith(poison);
        scene.StartApp("app", workers: 2, threads: 4);
        await scene.WaitUntilAsync(
            async () => await scene.Engine.ScalarAsync(scene.Database, "SELECT count(*) FROM keel_failed_executions f JOIN keel_jobs j ON j.id = f.job_id WHERE j.kind LIKE 'bench.poison%'") == poison.Count,
            TimeSpan.FromMinutes(4),
            $"the {poison.Count} poison jobs fail");

        HashSet<int>? poisoned = null;
        await scene.FinishAsync(outcome, TimeSpan.FromMinutes(4), pid => (poisoned ??= [.. scene.Log().Where(l => l.What == "start" && poison.Contains(l.JobId)).Select(l => l.Pid)]).Contains(pid));
        outcome.CollateralFailures = await scene.CountAsync("SELECT count(*) FROM keel_jobs j WHERE j.kind = 'bench.sleep' AND (j.worker_losses > 0 OR EXISTS (SELECT 1 FROM keel_failed_executions f WHERE f.job_id = j.id))");
        var log = scene.Log();
        var runs = poison.Select(id => log.Count(l => l.What == "start" && l.JobId == id)).Order().ToList();
        var losses = new List<int>();
        foreach (var id in poison)
        {
            var job = await scene.Keel.GetJobAsync(id);
            losses.Add(job?.WorkerLosses ?? -1);
            if (job?.State != JobState.Failed)
            {
                scene.Notes.Add($"poison job {id} ({job?.Kind}) ended {job?.State}");
            }
        }

        losses.Sort();
        outcome.Extra.Add(("poison jobs", "jobs", poison.Count));
        outcome.Extra.Add(("runs per poison job before it failed, fewest", "runs", runs[0]));
        outcome.Extra.Add(("runs per poison job before it failed, most", "runs", runs[^1]));
        outcome.Extra.Add(("worker losses charged per poison job, fewest", "losses", losses[0]));
        outcome.Extra.Add(("worker losses charged per poison job, most", "losses", losses[^1]));
        outcome.Notes.AddRange(scene.Notes.Except(outcome.Notes));
        return outcome;
    }

    /// <summary>
    /// A fault that must not cause a takeover: the target app (2 worker processes of 4 threads) and the observer (1 of 4)
    /// run held jobs and a stream of short ones; the fault hits in rounds (one in smoke mode), and after each the bench
    /// waits until the target starts a job again. Then it waits out the session grace and a few liveness checks (a false
    /// prune would have happened by then) and finishes.
    /// </summary>
    private static async Task<Outcome> NoTakeoverAsync(RecoveryScene scene, string key, BenchSettings s, string targetDatabase, string observerDatabase, TimeSpan gap, Func<int, Task<string>> fault)
    {
        var outcome = new Outcome(Title(key), scene.Liveness.Name, takeover: false);
        var rounds = s.Smoke ? 1 : key switch { "failover" => 1, "crash-restart" => 2, _ => 3 };
        var settle = scene.Liveness.SessionGrace + (scene.Liveness.LivenessCheck * 2) + TimeSpan.FromSeconds(1);
        // The held jobs go to the target (the observer starts once they run): a false prune of the target would run them twice.
        var target = scene.StartApp("target", workers: 2, threads: 4, targetDatabase);
        await scene.WaitRegisteredAsync(target, 2);
        var held = await scene.EnqueueHeldAsync(4);
        await scene.WaitStartedAsync(held);
        var observer = scene.StartApp("observer", workers: 1, threads: 4, observerDatabase);
        await scene.WaitRegisteredAsync(observer, 1);
        // 12 slots at 5 short jobs a second each, for the rounds and the settling and some.
        var window = (rounds * (gap.TotalSeconds + 1)) + settle.TotalSeconds + 3;
        await scene.EnqueueAsync(RecoveryScene.Short((int)(12 * (1000 / ShortJobMilliseconds) * window), ShortJobMilliseconds));
        await scene.WaitUntilAsync(() => Task.FromResult(scene.Log().Count(l => l.What == "start" && scene.AppOf(l.Pid) == "target") >= 8), TimeSpan.FromSeconds(60), "the target runs jobs");
        var heldByTarget = scene.InFlight().Where(p => scene.AppOf(p.Key) == "target").Sum(p => p.Value.Count(held.Contains));

        var resumed = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            var since = Stopwatch.GetTimestamp();
            var what = await fault(round);
            var after = await scene.ResumedAsync("target", since, Stopwatch.GetTimestamp(), TimeSpan.FromSeconds(60));
            scene.Notes.Add($"round {round}: {what}; the target started a job again after {Recovery.Ms(after)}");
            if (after is { } ms)
            {
                resumed.Add(ms);
            }

            await Task.Delay(gap);
        }

        await Task.Delay(settle);
        scene.Notes.Add($"{heldByTarget} of the 4 held jobs ran in the target through the faults");
        outcome.ResumedMs = resumed.Count > 0 ? resumed.Max() : null;
        await scene.FinishAsync(outcome);
        return outcome;
    }

    /// <summary>
    /// Signals the victim, then measures the takeover of its jobs; a frozen victim is resumed once they all run elsewhere,
    /// and the bench waits until its own runs of them have ended.
    /// </summary>
    private static async Task InterruptAsync(RecoveryScene scene, Outcome outcome, int victim, HashSet<long> jobs, int signal)
    {
        scene.Victims.Add(victim);
        scene.LostJobs.UnionWith(jobs);
        outcome.JobsLost = jobs.Count;
        var faultAt = DateTimeOffset.UtcNow;
        var since = Stopwatch.GetTimestamp();
        var resumedAt = 0L;
        scene.Signal(victim, signal);
        try
        {
            (outcome.TakeoverFirstMs, outcome.TakeoverAllMs) = await scene.TakeOverAsync(victim, jobs, since, Patience(scene.Liveness));
        }
        finally
        {
            if (signal == Child.SIGSTOP)
            {
                Child.Signal(victim, Child.SIGCONT);
                resumedAt = Stopwatch.GetTimestamp();
            }
        }

        outcome.RecoveredMs = await scene.RecoveredAsync(jobs, faultAt);
        if (signal == Child.SIGSTOP)
        {
            await scene.WaitUntilAsync(() => Task.FromResult(!scene.InFlight().ContainsKey(victim)), TimeSpan.FromSeconds(30), $"the frozen worker (pid {victim}) ends its runs once resumed");
            var ends = scene.Log().Where(l => l.Pid == victim && jobs.Contains(l.JobId) && l.What is "cancel" or "end" && l.Monotonic > since).ToList();
            scene.Notes.Add(ends.Count > 0
                ? $"resumed with SIGCONT right after the takeover: within {Recovery.Ms(RecoveryScene.Milliseconds(ends.Max(e => e.Monotonic!.Value) - resumedAt))} the frozen worker cancelled {ends.Count(e => e.What == "cancel")} and ended {ends.Count(e => e.What == "end")} of its {jobs.Count} runs"
                : $"resumed with SIGCONT right after the takeover: the frozen worker exited {(Child.IsAlive(victim) ? "(still alive, its runs ended unrecorded)" : "without recording its runs' end")}");
        }
    }

    private static TimeSpan Patience(Liveness liveness) => (liveness.AliveThreshold * 2) + (liveness.PruneInterval * 2) + TimeSpan.FromSeconds(60);

    private static string Title(string key) => Recovery.Cases.Single(c => c.Key == key).Title;

    /// <summary>The same database with an application name, so the bench can pick out one app's sessions.</summary>
    private static string Named(string connectionString, string application)
        => new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = application }.ConnectionString;

    /// <summary>The same database through <paramref name="proxy"/>.</summary>
    private static string Via(string connectionString, FaultProxy proxy)
        => new NpgsqlConnectionStringBuilder(connectionString) { Host = proxy.Host, Port = proxy.Port }.ConnectionString;
}
