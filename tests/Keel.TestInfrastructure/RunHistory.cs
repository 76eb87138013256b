using System.Collections.Concurrent;
using System.Globalization;

namespace Keel.TestInfrastructure;

/// <summary>
/// One line of a run log: a job's run recording its <c>start</c>, <c>end</c> or <c>cancel</c>. The files are written by
/// the jobs of the apps under test (one file per OS process, <c>&lt;pid&gt;.log</c>, a line per event, flushed at once so a
/// process killed with SIGKILL has recorded what it started): <c>what job attempt pid unix-ms [monotonic]</c>.
/// </summary>
/// <param name="What"><c>start</c>, <c>end</c> or <c>cancel</c>.</param>
/// <param name="JobId">The job.</param>
/// <param name="Attempt">The attempt number the run was given.</param>
/// <param name="Pid">The OS process that ran it.</param>
/// <param name="At">Unix milliseconds.</param>
/// <param name="Monotonic">
/// A <see cref="System.Diagnostics.Stopwatch"/> timestamp (CLOCK_MONOTONIC on Linux, one clock for every process of the
/// machine), when the writer added one.
/// </param>
public readonly record struct RunLogLine(string What, long JobId, int Attempt, int Pid, long At, long? Monotonic = null);

/// <summary>Reads the run-log folders the apps under test write.</summary>
public static class RunLogFiles
{
    /// <summary>Every line of every <c>*.log</c> file in <paramref name="folder"/>, ordered by time; none when the folder is gone.</summary>
    /// <param name="folder">The run-log folder.</param>
    /// <returns>The lines.</returns>
    public static IReadOnlyList<RunLogLine> Read(string folder)
    {
        var lines = new List<RunLogLine>();
        IEnumerable<string> files;
        try
        {
            files = [.. Directory.EnumerateFiles(folder, "*.log")];
        }
        catch (DirectoryNotFoundException)
        {
            return lines;
        }

        foreach (var file in files)
        {
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                while (reader.ReadLine() is { } line)
                {
                    if (Parse(line) is { } parsed)
                    {
                        lines.Add(parsed);
                    }
                }
            }
            catch (FileNotFoundException)
            {
            }
        }

        return [.. lines.OrderBy(l => l.At)];
    }

    /// <summary>The pids that wrote to <paramref name="folder"/> (one file each).</summary>
    /// <param name="folder">The run-log folder.</param>
    /// <returns>The pids; none when the folder is gone.</returns>
    public static IReadOnlyList<int> Pids(string folder)
    {
        try
        {
            return [.. Directory.EnumerateFiles(folder, "*.log")
                .Select(f => int.TryParse(Path.GetFileNameWithoutExtension(f), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : 0)
                .Where(pid => pid > 0)];
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    /// <summary>One line as a writer formats it: <c>what job attempt pid unix-ms [monotonic]</c> and a newline.</summary>
    /// <param name="what"><c>start</c>, <c>end</c> or <c>cancel</c>.</param>
    /// <param name="jobId">The job.</param>
    /// <param name="attempt">The attempt.</param>
    /// <param name="pid">The process.</param>
    /// <param name="at">Unix milliseconds.</param>
    /// <param name="monotonic">A Stopwatch timestamp, or null.</param>
    /// <returns>The line.</returns>
    public static string Format(string what, long jobId, int attempt, int pid, long at, long? monotonic = null)
        => monotonic is { } m
            ? string.Create(CultureInfo.InvariantCulture, $"{what} {jobId} {attempt} {pid} {at} {m}\n")
            : string.Create(CultureInfo.InvariantCulture, $"{what} {jobId} {attempt} {pid} {at}\n");

    private static RunLogLine? Parse(string line)
    {
        var p = line.Split(' ');
        if (p.Length is not (5 or 6)
            || !long.TryParse(p[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var job)
            || !int.TryParse(p[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var attempt)
            || !int.TryParse(p[3], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)
            || !long.TryParse(p[4], NumberStyles.Integer, CultureInfo.InvariantCulture, out var at))
        {
            return null; // A line cut short by a kill: nothing to learn from it.
        }

        long? monotonic = p.Length == 6 && long.TryParse(p[5], NumberStyles.Integer, CultureInfo.InvariantCulture, out var m) ? m : null;
        return new RunLogLine(p[0], job, attempt, pid, at, monotonic);
    }
}

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

/// <summary>Reads the runs of run logs and finds runs of one job that overlapped (DESIGN §2.9).</summary>
public static class RunHistory
{
    /// <summary>Every run recorded in <paramref name="apps"/>' run logs (name, lines), ends resolved with <paramref name="watch"/>.</summary>
    /// <param name="apps">Each app's name and run-log lines.</param>
    /// <param name="watch">When each pid was last seen alive, for runs whose process ended without an end line.</param>
    /// <returns>The runs, ordered by start.</returns>
    public static IReadOnlyList<Run> Read(IEnumerable<(string Name, IReadOnlyList<RunLogLine> Log)> apps, PidWatch watch)
    {
        ArgumentNullException.ThrowIfNull(apps);
        ArgumentNullException.ThrowIfNull(watch);
        var runs = new List<Run>();
        foreach (var (name, log) in apps)
        {
            var ends = log.Where(l => l.What is "end" or "cancel").ToLookup(l => (l.JobId, l.Attempt, l.Pid));
            foreach (var start in log.Where(l => l.What == "start"))
            {
                var end = ends[(start.JobId, start.Attempt, start.Pid)].Where(l => l.At >= start.At).OrderBy(l => l.At).FirstOrDefault();
                if (end.What is not null)
                {
                    runs.Add(new Run(start.JobId, start.Attempt, start.Pid, name, start.At, end.At, end.What));
                }
                else if (LocalProcess.PidAlive(start.Pid))
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
    /// <param name="runs">The runs.</param>
    /// <returns>One sentence per overlapping pair.</returns>
    public static IReadOnlyList<string> Overlaps(IReadOnlyList<Run> runs)
        => [.. runs.GroupBy(r => r.JobId).SelectMany(job => OverlappingPairs([.. job]).Select(p => string.Create(
            CultureInfo.InvariantCulture,
            $"job {job.Key} ran twice at once for {p.Overlap} ms: {p.First}; and {p.Second}")))];

    /// <summary>
    /// Every pair of runs of <paramref name="jobs"/> (jobs that share a concurrency limit of one) that were under way
    /// at the same moment.
    /// </summary>
    /// <param name="runs">The runs.</param>
    /// <param name="jobs">The jobs under the limit.</param>
    /// <param name="limit">The limit's key, for the message.</param>
    /// <returns>One sentence per overlapping pair.</returns>
    public static IReadOnlyList<string> Overlaps(IReadOnlyList<Run> runs, IReadOnlySet<long> jobs, string limit)
        => [.. OverlappingPairs([.. runs.Where(r => jobs.Contains(r.JobId))]).Where(p => p.First.JobId != p.Second.JobId).Select(p => string.Create(
            CultureInfo.InvariantCulture,
            $"two jobs of concurrency limit {limit} (limit 1) ran at once for {p.Overlap} ms: job {p.First.JobId} {p.First}; and job {p.Second.JobId} {p.Second}"))];

    /// <summary>
    /// The overlap of <paramref name="runs"/> in milliseconds: for each job, how long two or more of its runs were under
    /// way at the same moment (a run still going counts until <paramref name="now"/>), summed over the jobs.
    /// </summary>
    /// <param name="runs">The runs.</param>
    /// <param name="now">Unix milliseconds that end the runs still going; null for the current time.</param>
    /// <returns>The total, in milliseconds.</returns>
    public static long OverlapMilliseconds(IReadOnlyList<Run> runs, long? now = null)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var until = now ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long total = 0;
        foreach (var job in runs.GroupBy(r => r.JobId))
        {
            // Sweep the job's run boundaries: time is overlapped while two or more runs are under way.
            var edges = job.SelectMany(r => new[] { (At: r.StartedAt, Delta: 1), (At: Math.Max(r.StartedAt, r.EndedAt ?? until), Delta: -1) })
                .OrderBy(e => e.At).ThenBy(e => e.Delta)
                .ToList();
            var running = 0;
            long since = 0;
            foreach (var (at, delta) in edges)
            {
                if (running >= 2)
                {
                    total += at - since;
                }

                running += delta;
                since = at;
            }
        }

        return total;
    }

    /// <summary>A Unix-milliseconds time as <c>HH:mm:ss.fff</c> (UTC).</summary>
    /// <param name="unixMilliseconds">The time.</param>
    /// <returns>The text.</returns>
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
/// Polls the pids that wrote to the run logs (every 20 ms) and remembers when each was last seen alive: the latest
/// moment a run that never wrote its end line is known to have been under way.
/// </summary>
public sealed class PidWatch : IAsyncDisposable
{
    private readonly ConcurrentDictionary<int, long> _lastSeenAlive = new();
    private readonly Func<IEnumerable<int>> _pids;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _polling;
    private bool _disposed;

    /// <summary>Starts polling the pids <paramref name="pids"/> lists (called at every poll).</summary>
    /// <param name="pids">The pids to watch.</param>
    public PidWatch(Func<IEnumerable<int>> pids)
    {
        _pids = pids;
        _polling = Task.Run(PollAsync);
    }

    /// <summary>Unix milliseconds when <paramref name="pid"/> was last seen alive; null when it never was.</summary>
    /// <param name="pid">The pid.</param>
    /// <returns>The time, or null.</returns>
    public long? LastSeenAlive(int pid) => _lastSeenAlive.TryGetValue(pid, out var at) ? at : null;

    /// <summary>Stops polling.</summary>
    /// <returns>A task completing once the poll loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        await _polling.ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task PollAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            foreach (var pid in _pids())
            {
                var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                if (LocalProcess.PidAlive(pid))
                {
                    _lastSeenAlive[pid] = now;
                }
            }

            try
            {
                await Task.Delay(20, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
