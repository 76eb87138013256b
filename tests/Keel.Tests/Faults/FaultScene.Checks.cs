using System.Data.Common;
using System.Globalization;
using Keel.Storage;
using Keel.TestInfrastructure;
using Keel.Tests.Processes;

namespace Keel.Tests.Faults;

/// <summary>The checks a fault scene makes once the fault is over, and its report.</summary>
public sealed partial class FaultScene
{
    /// <summary>
    /// The checks of DESIGN §2 after the run drained: no overlapping runs (9), no live process pruned (4, 7), no
    /// worker loss charged but for a process the test killed (5), nothing left claimed, ready or failed (1, 8).
    /// </summary>
    /// <param name="before">The process rows before the fault.</param>
    /// <param name="limited">Jobs sharing a concurrency limit of one, if any.</param>
    /// <param name="prunable">
    /// Apps whose processes the fault may legitimately get pruned, charging their jobs a loss: the fault outlasted
    /// their lease. Overlap is checked all the same.
    /// </param>
    public async Task CheckAsync(IReadOnlyList<ProcessSnapshot> before, IReadOnlyList<long>? limited = null, IReadOnlyCollection<string>? prunable = null)
    {
        var runs = RunHistory.Read(RunLogs(), _watch);
        foreach (var overlap in RunHistory.Overlaps(runs))
        {
            _violations.Add("invariant 9 (no overlap): " + overlap);
        }

        if (limited is { Count: > 0 })
        {
            foreach (var overlap in RunHistory.Overlaps(runs, limited.ToHashSet(), "limited/shared"))
            {
                _violations.Add("invariant 9 (no overlap, concurrency limit): " + overlap);
            }
        }

        await CheckNoLiveProcessPrunedAsync([.. before.Where(r => prunable?.Contains(r.App) != true)], prunable is not { Count: > 0 });

        var prunablePids = Apps.Where(a => prunable?.Contains(a.Name) == true).SelectMany(a => a.App.RunLogPids());
        await CheckWorkerLossesAsync([.. _killed, .. before.Where(r => prunable?.Contains(r.App) == true).Select(r => r.Pid), .. prunablePids]);

        foreach (var (table, what) in new[] { ("keel_claimed_executions", "claims"), ("keel_ready_executions", "ready jobs"), ("keel_failed_executions", "failed jobs"), ("keel_blocked_executions", "blocked jobs") })
        {
            var left = await ScalarAsync($"SELECT count(*) FROM {table}");
            if (left > 0)
            {
                _violations.Add($"invariants 1 and 8: {left} {what} left in {table} after the run drained");
            }
        }

        _output.WriteLine($"{runs.Count} runs of {_total} jobs; {runs.Count - runs.Select(r => r.JobId).Distinct().Count()} repeated");
    }

    /// <summary>
    /// Invariant 7: a process that cannot renew its lease stops its jobs before any other process may take them
    /// over. Every run of <paramref name="apps"/> under way at <paramref name="faultStart"/> (Unix ms) must have
    /// ended by <paramref name="takeoverAllowed"/>, the moment another process could take its job (the fault has
    /// outlasted the lease by then, and the database answers again).
    /// </summary>
    public void CheckStoppedBefore(long faultStart, long takeoverAllowed, IReadOnlyCollection<string> apps, string why)
    {
        var late = RunHistory.Read(RunLogs(), _watch)
            .Where(r => apps.Contains(r.App) && r.StartedAt <= faultStart && (r.EndedAt ?? long.MaxValue) > faultStart && (r.EndedAt ?? long.MaxValue) > takeoverAllowed);
        foreach (var run in late)
        {
            _violations.Add($"invariant 7 (a process fences itself): job {run.JobId} was still running at {RunHistory.Time(takeoverAllowed)}, when {why}: {run}");
        }
    }

    /// <summary>Fails with every violation, the timeline and each app's Keel warnings; passes when there were none.</summary>
    public void AssertNoViolations()
    {
        string[] timeline;
        lock (_timeline)
        {
            timeline = [.. _timeline];
        }

        if (_violations.Count == 0)
        {
            return;
        }

        var report = new List<string> { $"{_violations.Count} violations of DESIGN §2:" };
        foreach (var kind in _violations.GroupBy(v => v[..v.IndexOf(':', StringComparison.Ordinal)]))
        {
            report.AddRange(kind.Take(MaxShownPerKind).Select(v => "  - " + v));
            if (kind.Count() > MaxShownPerKind)
            {
                report.Add($"  - … and {kind.Count() - MaxShownPerKind} more of {kind.Key}");
            }
        }

        report.Add("timeline:");
        report.AddRange(timeline.Select(t => "  " + t));
        foreach (var (name, app) in Apps)
        {
            var warnings = app.Output.Split('\n').Where(l => l.Contains("Pruned process", StringComparison.Ordinal) || l.Contains("no longer registered", StringComparison.Ordinal) || l.Contains("could not heartbeat", StringComparison.Ordinal) || l.Contains("Late result", StringComparison.Ordinal)).Take(20).ToList();
            if (warnings.Count > 0)
            {
                report.Add($"app {name}'s Keel warnings (first {warnings.Count}):");
                report.AddRange(warnings.Select(w => "  " + Trim(w)));
            }
        }

        Assert.Fail(string.Join('\n', report));
    }

    private async Task CheckNoLiveProcessPrunedAsync(IReadOnlyList<ProcessSnapshot> before, bool noPruneAtAll)
    {
        var now = await SnapshotAsync();
        var outputs = Apps.Select(a => a.App.Output).ToList();
        if (noPruneAtAll)
        {
            // Processes started after the snapshot (replacements) count too: any prune of a process the test did not kill.
            var named = before.Select(r => "Pruned process " + r.Name + " ").ToList();
            foreach (var line in outputs.SelectMany(o => o.Split('\n')).Where(l => l.Contains("Pruned process ", StringComparison.Ordinal) && !named.Exists(n => l.Contains(n, StringComparison.Ordinal))))
            {
                var pid = System.Text.RegularExpressions.Regex.Match(line, @"\(pid (\d+)[ )]");
                if (!pid.Success || !_killed.Contains(int.Parse(pid.Groups[1].Value, CultureInfo.InvariantCulture)))
                {
                    _violations.Add("invariants 4 and 7 (no false positive): a process not in the snapshot taken before the fault (a replacement), and not killed, was pruned: " + Trim(line));
                }
            }
        }

        foreach (var row in before.Where(r => !_killed.Contains(r.Pid)))
        {
            var pruned = outputs.SelectMany(o => o.Split('\n'))
                .Where(l => l.Contains("Pruned process " + row.Name + " ", StringComparison.Ordinal))
                .Select(Trim)
                .ToList();
            var rowGone = now.All(r => r.Id != row.Id);
            var exited = !SupervisedApp.IsAlive(row.Pid);
            if (rowGone || exited || pruned.Count > 0)
            {
                var what = (rowGone, exited) switch
                {
                    (true, true) => "lost its process row, and its process has exited since (a pruned child exits; its supervisor started a new one)",
                    (true, false) => "lost its process row while its process still runs",
                    (false, true) => "kept its row but its process exited",
                    _ => "was pruned (and registered again)",
                };
                _violations.Add($"invariants 4 and 7 (no false positive): live {row} {what}" + (pruned.Count > 0 ? ":\n      " + string.Join("\n      ", pruned.Take(3)) : string.Empty));
            }
        }
    }

    /// <summary>Every job charged a worker loss must have lost one of <paramref name="mayDie"/> (each cause names its pid).</summary>
    private async Task CheckWorkerLossesAsync(IReadOnlyList<int> mayDie)
    {
        var charged = new List<long>();
        await WaitForAsync(
            async () =>
            {
                charged.Clear();
                await using var connection = await Db.OpenAsync();
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT id FROM keel_jobs WHERE worker_losses > 0 ORDER BY id";
                await using DbDataReader reader = await command.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    charged.Add(reader.GetInt64(0));
                }

                return true;
            },
            TimeSpan.FromSeconds(15),
            "the database lists worker losses");
        foreach (var id in charged)
        {
            var job = await RetryAsync(() => Db.Storage.JobGetAsync(id, default));
            var losses = job?.Errors.Where(e => e.ExceptionType == WorkerLostCause.ExceptionType).ToList() ?? [];
            var wrong = losses.Where(e => !mayDie.Any(pid => e.Message.Contains(string.Create(CultureInfo.InvariantCulture, $"(pid {pid} "), StringComparison.Ordinal) || e.Message.Contains(string.Create(CultureInfo.InvariantCulture, $"(pid {pid})"), StringComparison.Ordinal))).ToList();
            if (wrong.Count > 0 || losses.Count < job?.WorkerLosses)
            {
                _violations.Add($"invariant 5 (a loss is charged only when the process died): job {id} ({job?.Kind}) was charged {job?.WorkerLosses} worker losses, {wrong.Count} of them for a process that lived: {string.Join(" | ", wrong.Select(e => Trim(e.Message)))}");
            }
        }
    }

    private async Task<IReadOnlyList<string>> UnfinishedAsync()
    {
        var lines = new List<string>();
        try
        {
            var processes = await Db.Storage.ProcessesListAsync(new ProcessesListParams(null, null), default);
            var runs = RunHistory.Read(RunLogs(), _watch);
            await using var connection = await Db.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT id FROM keel_jobs WHERE finished_at IS NULL ORDER BY id LIMIT 20";
            var ids = new List<long>();
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    ids.Add(reader.GetInt64(0));
                }
            }

            foreach (var id in ids)
            {
                var job = await Db.Storage.JobGetAsync(id, default);
                var owner = processes.FirstOrDefault(p => p.Id == job?.ClaimedByProcessId);
                var last = runs.LastOrDefault(r => r.JobId == id);
                var claim = owner is null
                    ? string.Empty
                    : string.Create(CultureInfo.InvariantCulture, $", claimed by {owner.Kind} {owner.Name} (pid {owner.Pid}, {(SupervisedApp.IsAlive(owner.Pid) ? "alive" : "gone")}, heartbeat {owner.HeartbeatAge.TotalSeconds:0.0} s ago)");
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"job {id} ({job?.Kind}) {job?.State}, attempts {job?.Attempts}{claim}{(last is null ? ", never started" : ", last run: " + last)}"));
            }
        }
        catch (Exception e) when (IsTransient(e))
        {
            lines.Add("(could not read them: " + e.Message + ")");
        }

        return lines;
    }
}
