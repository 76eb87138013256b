using System.Collections.Concurrent;
using System.Globalization;
using Keel.Tests.Processes;

namespace Keel.Tests.Faults;

/// <summary>
/// One execution of a job as the run logs tell it: from its "start" line to its "end" or "cancel" line. A run with
/// neither ended when its process did: at the last moment the process was seen alive (a lower bound, so an overlap
/// found with it is real), or not yet when the process still runs.
/// </summary>
/// <param name="JobId">The job.</param>
/// <param name="Attempt">The attempt number the run was given.</param>
/// <param name="Pid">The worker process that ran it.</param>
/// <param name="App">Which app (host) the process belonged to.</param>
/// <param name="StartedAt">Unix milliseconds of the "start" line.</param>
/// <param name="EndedAt">Unix milliseconds of its end; null while its process still runs it.</param>
/// <param name="How">How it ended: <c>end</c>, <c>cancel</c>, <c>process gone</c> or <c>still running</c>.</param>
public sealed record Run(long JobId, int Attempt, int Pid, string App, long StartedAt, long? EndedAt, string How)
{
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"attempt {Attempt} in pid {Pid} ({App}) from {RunHistory.Time(StartedAt)} {(EndedAt is { } end ? $"until {RunHistory.Time(end)} ({How})" : "and still running")}");
}

/// <summary>Reads the runs of every app's run log and finds runs that overlapped.</summary>
public static class RunHistory
{
    /// <summary>Every run recorded by <paramref name="apps"/> (name, app), ends resolved with <paramref name="watch"/>.</summary>
    public static IReadOnlyList<Run> Read(IEnumerable<(string Name, SupervisedApp App)> apps, PidWatch watch)
    {
        var runs = new List<Run>();
        foreach (var (name, app) in apps)
        {
            var log = app.RunLog();
            foreach (var start in log.Where(l => l.What == "start"))
            {
                var end = log.FirstOrDefault(l => l.What is "end" or "cancel" && l.JobId == start.JobId && l.Attempt == start.Attempt && l.Pid == start.Pid && l.At >= start.At);
                if (end.What is not null)
                {
                    runs.Add(new Run(start.JobId, start.Attempt, start.Pid, name, start.At, end.At, end.What));
                }
                else if (SupervisedApp.IsAlive(start.Pid))
                {
                    runs.Add(new Run(start.JobId, start.Attempt, start.Pid, name, start.At, null, "still running"));
                }
                else
                {
                    runs.Add(new Run(start.JobId, start.Attempt, start.Pid, name, start.At, Math.Max(start.At, watch.LastSeenAlive(start.Pid) ?? start.At), "process gone"));
                }
            }
        }

        return [.. runs.OrderBy(r => r.StartedAt)];
    }

    /// <summary>Every pair of runs of one job that were under way at the same moment, described for a failure message.</summary>
    public static IReadOnlyList<string> Overlaps(IReadOnlyList<Run> runs)
        => [.. runs.GroupBy(r => r.JobId).SelectMany(job => OverlappingPairs([.. job]).Select(p => string.Create(
            CultureInfo.InvariantCulture,
            $"job {job.Key} ran twice at once for {p.Overlap} ms: {p.First}; and {p.Second}")))];

    /// <summary>
    /// Every pair of runs of <paramref name="jobs"/> (jobs that share a concurrency limit of one) that were under way
    /// at the same moment.
    /// </summary>
    public static IReadOnlyList<string> Overlaps(IReadOnlyList<Run> runs, IReadOnlySet<long> jobs, string limit)
        => [.. OverlappingPairs([.. runs.Where(r => jobs.Contains(r.JobId))]).Where(p => p.First.JobId != p.Second.JobId).Select(p => string.Create(
            CultureInfo.InvariantCulture,
            $"two jobs of concurrency limit {limit} (limit 1) ran at once for {p.Overlap} ms: job {p.First.JobId} {p.First}; and job {p.Second.JobId} {p.Second}"))];

    /// <summary>A Unix-milliseconds time as <c>HH:mm:ss.fff</c> (UTC).</summary>
    public static string Time(long unixMilliseconds)
        => DateTimeOffset.FromUnixTimeMilliseconds(unixMilliseconds).ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    private static IEnumerable<(Run First, Run Second, long Overlap)> OverlappingPairs(List<Run> runs)
    {
        runs.Sort((a, b) => a.StartedAt.CompareTo(b.StartedAt));
        for (var i = 0; i < runs.Count; i++)
        {
            var end = runs[i].EndedAt ?? long.MaxValue;
            for (var j = i + 1; j < runs.Count && runs[j].StartedAt < end; j++)
            {
                var overlap = Math.Min(end, runs[j].EndedAt ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()) - runs[j].StartedAt;
                yield return (runs[i], runs[j], Math.Max(overlap, 0));
            }
        }
    }
}

/// <summary>
/// Polls the pids that wrote to the apps' run logs (every 20 ms) and remembers when each was last seen alive: the
/// latest moment a run that never wrote its end line is known to have been under way.
/// </summary>
public sealed class PidWatch : IAsyncDisposable
{
    private readonly ConcurrentDictionary<int, long> _lastSeenAlive = new();
    private readonly Func<IEnumerable<int>> _pids;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _polling;

    public PidWatch(Func<IEnumerable<int>> pids)
    {
        _pids = pids;
        _polling = Task.Run(PollAsync);
    }

    /// <summary>Unix milliseconds when <paramref name="pid"/> was last seen alive; null when it never was.</summary>
    public long? LastSeenAlive(int pid) => _lastSeenAlive.TryGetValue(pid, out var at) ? at : null;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _polling;
        _stop.Dispose();
    }

    private async Task PollAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            foreach (var pid in _pids())
            {
                var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                if (SupervisedApp.IsAlive(pid))
                {
                    _lastSeenAlive[pid] = now;
                }
            }

            try
            {
                await Task.Delay(20, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
