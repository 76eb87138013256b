using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Keel.TestInfrastructure;

/// <summary>
/// What the throwaway servers (<see cref="PostgresServer"/>, <see cref="PgBouncerServer"/>) share: signals by pid, pid
/// liveness from /proc, the unprivileged user to run as when the tests run as root, free ports and one-shot commands.
/// Public for the bench, which signals and watches its own child processes with the same helpers.
/// </summary>
public static class LocalProcess
{
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    private const int ESRCH = 3;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; true when it was delivered.</summary>
    public static bool Signal(int pid, int signal) => pid > 0 && kill(pid, signal) == 0;

    /// <summary>True while <paramref name="pid"/> runs; a zombie awaiting its reaper counts as gone.</summary>
    public static bool PidAlive(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        if (kill(pid, 0) != 0)
        {
            return Marshal.GetLastPInvokeError() != ESRCH;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return !(close > 0 && close + 2 < stat.Length && stat[close + 2] == 'Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Waits until <paramref name="pid"/> has gone; false when it still runs after <paramref name="timeout"/>.</summary>
    public static bool WaitForPidExit(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!PidAlive(pid))
            {
                return true;
            }

            Thread.Sleep(20);
        }

        return !PidAlive(pid);
    }

    /// <summary>The command line of <paramref name="pid"/> with its NULs as spaces; empty when it is gone or unreadable.</summary>
    public static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return string.Empty;
        }
        catch (UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    /// <summary>The pids whose parent is <paramref name="parent"/>.</summary>
    public static List<int> ChildrenOf(int parent)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (fields.Length > 1 && int.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var ppid) && ppid == parent)
                {
                    children.Add(pid);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return children;
    }

    /// <summary>True when this test run is root (and servers that refuse root must run as <c>postgres</c>).</summary>
    public static bool IsRoot()
    {
        try
        {
            return geteuid() == 0;
        }
        catch (DllNotFoundException)
        {
            return Environment.UserName == "root";
        }
        catch (EntryPointNotFoundException)
        {
            return Environment.UserName == "root";
        }
    }

    /// <summary><c>runuser</c>, from PATH or the usual system folders; null when missing.</summary>
    public static string? FindRunuser()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Executable(Path.Combine(d, "runuser")))
            .FirstOrDefault(p => p is not null);
    }

    /// <summary><paramref name="candidate"/> when it is an executable file, else null.</summary>
    public static string? Executable(string candidate)
        => File.Exists(candidate) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
            ? candidate
            : null;

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    /// <summary>
    /// The start info for <paramref name="file"/>: through <c>runuser -u postgres --</c> when <paramref name="runuser"/>
    /// is set, with every argument passed as is (no shell).
    /// </summary>
    public static ProcessStartInfo StartInfo(string? runuser, string file, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(runuser ?? file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (runuser is not null)
        {
            info.ArgumentList.Add("-u");
            info.ArgumentList.Add("postgres");
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(file);
        }

        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return info;
    }

    /// <summary>Runs a command to its end; throws with its output when it exits non-zero or outlives <paramref name="timeout"/>.</summary>
    public static async Task<string> RunToEndAsync(ProcessStartInfo info, CancellationToken ct, TimeSpan? timeout = null)
    {
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {info.FileName}");
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            throw new TimeoutException($"{info.FileName} {string.Join(' ', info.ArgumentList)} did not finish within {(timeout ?? TimeSpan.FromMinutes(2)).TotalSeconds:0} s:\n{await stdout.ConfigureAwait(false)}{await stderr.ConfigureAwait(false)}");
        }

        var output = await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{info.FileName} {string.Join(' ', info.ArgumentList)} exited with code {process.ExitCode}:\n{output}");
        }

        return output;
    }

    /// <summary>Deletes a temp folder, retrying briefly while a process that just died still holds files in it.</summary>
    public static void DeleteFolder(string? folder)
    {
        for (var i = 0; i < 10 && folder is not null && Directory.Exists(folder); i++)
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                Thread.Sleep(100);
            }
            catch (UnauthorizedAccessException)
            {
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>
    /// Removes a temp folder with a separate <c>rm -rf</c> that is not waited for, so the removal finishes even if
    /// this process is killed right after (a test host at the end of a run).
    /// </summary>
    public static void DeleteFolderDetached(string? folder)
    {
        if (folder is null || !Directory.Exists(folder))
        {
            return;
        }

        try
        {
            var info = new ProcessStartInfo("rm") { UseShellExecute = false };
            info.ArgumentList.Add("-rf");
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(folder);
            Process.Start(info)?.Dispose();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            DeleteFolder(folder);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc")]
    private static extern uint geteuid();

    /// <summary>The last <paramref name="lines"/> lines of a log file another process is writing; empty when there is none.</summary>
    public static string LogTail(string? file, int lines)
    {
        if (file is null || !File.Exists(file))
        {
            return string.Empty;
        }

        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}
