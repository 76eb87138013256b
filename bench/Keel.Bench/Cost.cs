using System.Globalization;

namespace Keel.Bench;

/// <summary>
/// CPU time of process trees from <c>/proc/PID/stat</c>: each member's user and system time plus what its reaped
/// children used (cutime, cstime), so a backend or child process that ended during a measurement still counts once
/// its parent has waited for it. Linux reports these in clock ticks of 10 ms (USER_HZ 100).
/// </summary>
public static class ProcessCpu
{
    private const double TicksPerSecond = 100;

    /// <summary>The CPU time, in seconds, of the bench's own process tree (its child processes included) without the PostgreSQL server's tree, and of that server's tree (0 when there is none).</summary>
    public static (double Bench, double Postgres) Read(int postmasterPid)
    {
        var table = ReadAll();
        var postgres = postmasterPid > 0 ? Tree(table, postmasterPid, exclude: -1) : 0;
        var bench = Tree(table, Environment.ProcessId, exclude: postmasterPid > 0 ? postmasterPid : -1);
        return (bench / TicksPerSecond, postgres / TicksPerSecond);
    }

    private static long Tree(Dictionary<int, (int Parent, long Ticks)> table, int root, int exclude)
    {
        var children = table.ToLookup(p => p.Value.Parent, p => p.Key);
        var total = 0L;
        var pending = new Stack<int>([root]);
        while (pending.TryPop(out var pid))
        {
            if (pid == exclude || !table.TryGetValue(pid, out var entry))
            {
                continue;
            }

            total += entry.Ticks;
            foreach (var child in children[pid])
            {
                pending.Push(child);
            }
        }

        return total;
    }

    private static Dictionary<int, (int Parent, long Ticks)> ReadAll()
    {
        var table = new Dictionary<int, (int, long)>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(folder, "stat"));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // ended meanwhile
            }

            // After "pid (comm) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            long Field(int i) => long.Parse(fields[i], NumberStyles.Integer, CultureInfo.InvariantCulture);
            table[pid] = ((int)Field(1), Field(11) + Field(12) + Field(13) + Field(14));
        }

        return table;
    }
}

/// <summary>What PostgreSQL counts for one database: statements (pg_stat_statements, when loaded), commits, row writes; WAL position of the whole server.</summary>
public sealed record PostgresCounters(long? Statements, long Commits, long RowWrites, decimal WalPosition)
{
    public PostgresCounters Minus(PostgresCounters before)
        => new(Statements - before.Statements, Commits - before.Commits, RowWrites - before.RowWrites, WalPosition - before.WalPosition);
}

/// <summary>The cost of a measured stretch of work: CPU (bench tree, PostgreSQL tree) and, on PostgreSQL, its counters.</summary>
public sealed record WorkCost(double BenchCpuSeconds, double PostgresCpuSeconds, PostgresCounters? Postgres)
{
    /// <summary>Samples per job: CPU of all processes and PostgreSQL's share, statements, commits, row writes, WAL bytes.</summary>
    public IEnumerable<Sample> PerJob(string label, long jobs, bool cpuOfPostgres)
    {
        if (cpuOfPostgres)
        {
            yield return new($"{label}: CPU per job, all processes", "ms", (BenchCpuSeconds + PostgresCpuSeconds) * 1_000 / jobs);
            yield return new($"{label}: CPU per job, PostgreSQL's share", "ms", PostgresCpuSeconds * 1_000 / jobs);
        }
        else
        {
            yield return new($"{label}: CPU per job, bench process tree", "ms", BenchCpuSeconds * 1_000 / jobs);
        }

        if (Postgres is { } pg)
        {
            if (pg.Statements is { } statements)
            {
                yield return new($"{label}: statements per job", "stmts", (double)statements / jobs);
            }

            yield return new($"{label}: commits per job", "commits", (double)pg.Commits / jobs);
            yield return new($"{label}: row writes per job", "rows", (double)pg.RowWrites / jobs);
            yield return new($"{label}: WAL bytes per job", "bytes", (double)pg.WalPosition / jobs);
        }
    }
}
