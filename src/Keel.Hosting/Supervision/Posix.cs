using System.Runtime.InteropServices;

namespace Keel.Hosting.Supervision;

/// <summary>The few POSIX calls process mode needs.</summary>
internal static partial class Posix
{
    public const int SIGINT = 2;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    /// <summary>Sends <paramref name="signal"/> to <paramref name="pid"/>; false when the process is gone.</summary>
    public static bool Signal(int pid, int signal) => !OperatingSystem.IsWindows() && Kill(pid, signal) == 0;

    /// <summary>Describes how a child ended from its .NET exit code (128 + n means killed by signal n on Unix).</summary>
    public static string DescribeExit(int exitCode) => exitCode switch
    {
        > 128 and < 128 + 65 => $"killed by signal {exitCode - 128} ({SignalName(exitCode - 128)})",
        Runtime.WorkerExitCodes.LeaseLost => $"exited with code {exitCode} (it could not renew its lease while a job ran on)",
        Runtime.WorkerExitCodes.JobUnresponsive => $"exited with code {exitCode} (a job did not stop when cancelled)",
        Runtime.WorkerExitCodes.JobCancelled => $"exited with code {exitCode} (a cancelled job did not stop within its grace)",
        _ => $"exited with code {exitCode}",
    };

    public static string SignalName(int signal) => signal switch
    {
        SIGINT => "SIGINT",
        SIGQUIT => "SIGQUIT",
        6 => "SIGABRT",
        SIGKILL => "SIGKILL",
        11 => "SIGSEGV",
        SIGTERM => "SIGTERM",
        _ => "signal " + signal.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Ends this process at once with <paramref name="code"/>: no shutdown hooks, no finalizers, nothing that could wait.</summary>
    public static void ExitNow(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        if (OperatingSystem.IsWindows())
        {
            Environment.Exit(code);
        }

        RawExit(code);
    }

    [LibraryImport("libc", EntryPoint = "_exit")]
    private static partial void RawExit(int code);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
