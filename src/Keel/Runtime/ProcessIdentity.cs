using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace Keel.Runtime;

/// <summary>Facts about this OS process that go into its process rows.</summary>
internal static class ProcessIdentity
{
    private static readonly Lazy<DateTimeOffset> StartedAtLazy = new(() =>
    {
        using var self = Process.GetCurrentProcess();
        return new DateTimeOffset(self.StartTime.ToUniversalTime(), TimeSpan.Zero);
    });

    private static readonly Lazy<string> HostnameLazy = new(() =>
    {
        try
        {
            // The full name: Environment.MachineName stops at the first dot, so w1.dc1 and w1.dc2 would look alike.
            var name = System.Net.Dns.GetHostName();
            return string.IsNullOrEmpty(name) ? Environment.MachineName : name;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return Environment.MachineName;
        }
    });

    public static int Pid => Environment.ProcessId;

    /// <summary>The host's full name, for people; never used to decide that a process is dead (see <see cref="HostProcess"/>).</summary>
    public static string Hostname => HostnameLazy.Value;

    public static DateTimeOffset StartedAt => StartedAtLazy.Value;

    /// <summary>A unique process-row name such as <c>worker-3f2a9c0d1e</c>.</summary>
    public static string NewName(string kind) => $"{kind.ToLowerInvariant()}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5))}";
}

/// <summary>
/// Whether a process on this host still runs, decided only where the answer is certain: the row's host must have this
/// boot id and pid namespace (so the pid means the same process here — not merely the same host name, which containers
/// and short names share), and its pid must carry the same start time in clock ticks since boot (from /proc, which no
/// wall-clock step moves), so a reused pid is never taken for the old process. Linux only; elsewhere nothing is judged.
/// </summary>
internal static class HostProcess
{
    private static readonly Lazy<string?> HostIdLazy = new(ReadHostId);
    private static readonly Lazy<long?> SelfStartTicksLazy = new(() => StartTicks(Environment.ProcessId));

    /// <summary>This host's boot id and pid namespace, e.g. <c>boot:4b1c…/pidns:4026531836</c>; null when unknown.</summary>
    public static string? HostId => HostIdLazy.Value;

    /// <summary>This process's start time in clock ticks since boot; null when unknown.</summary>
    public static long? SelfStartTicks => SelfStartTicksLazy.Value;

    /// <summary>
    /// True when the process is certainly gone: same host and pid namespace as this one, and no process with that pid
    /// and start time runs. False when it runs or when nothing certain can be said.
    /// </summary>
    public static bool IsGone(string? hostId, int pid, long? startTicks)
    {
        if (hostId is null || startTicks is null || HostId is null || !string.Equals(hostId, HostId, StringComparison.Ordinal))
        {
            return false;
        }

        return Stat(pid) is not { } stat || stat.StartTicks != startTicks.Value || stat.State is 'Z' or 'X';
    }

    /// <summary>A pid's start time in clock ticks since boot (field 22 of /proc/&lt;pid&gt;/stat); null when no such process.</summary>
    public static long? StartTicks(int pid) => Stat(pid)?.StartTicks;

    /// <summary>
    /// A pid's state and start time from /proc/&lt;pid&gt;/stat; null when no such process. A killed process whose parent
    /// has not reaped it yet is still listed, as a zombie (state Z): it runs nothing.
    /// </summary>
    private static (char State, long StartTicks)? Stat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read the fields after its last ')'.
        var close = stat.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var fields = stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (state); starttime is field 22.
        return fields.Length > 19 && fields[0].Length == 1 && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
            ? (fields[0][0], ticks)
            : null;
    }

    private static string? ReadHostId()
    {
        try
        {
            var boot = File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
            var pidNamespace = new FileInfo("/proc/self/ns/pid").LinkTarget;
            if (string.IsNullOrEmpty(boot) || string.IsNullOrEmpty(pidNamespace))
            {
                return null;
            }

            // "pid:[4026531836]" → "4026531836"
            var inode = pidNamespace.Trim().TrimStart("pid:".ToCharArray()).Trim('[', ']');
            return $"boot:{boot}/pidns:{inode}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return null;
        }
    }
}
