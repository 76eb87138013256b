using System.Diagnostics;
using System.Reflection;

namespace Keel.Hosting.Supervision;

/// <summary>What a child runs: one worker entry (by index), the dispatcher or the scheduler.</summary>
internal sealed record ChildSpec(KeelRoleKind Kind, int WorkerIndex)
{
    public override string ToString() => Kind == KeelRoleKind.Worker ? $"worker[{WorkerIndex}]" : Kind == KeelRoleKind.Scheduler ? "scheduler" : "dispatcher";
}

/// <summary>One running child OS process and what the supervisor knows of it.</summary>
internal sealed class ChildProcess(ChildSpec spec, string name, Process process, long startedAt)
{
    /// <summary>The first argument that makes a program run as a supervisor's child (<c>KeelApp</c> reads it).</summary>
    public const string ChildCommand = "__keel-child";

    public ChildSpec Spec { get; } = spec;

    /// <summary>The process-row name the child registers under.</summary>
    public string Name { get; } = name;

    public Process Process { get; } = process;

    public int Pid { get; } = process.Id;

    /// <summary>Start time as a <see cref="TimeProvider"/> timestamp.</summary>
    public long StartedAt { get; } = startedAt;

    /// <summary>The child's row id once it registered.</summary>
    public long? RowId { get; set; }

    /// <summary>When its registered row was first seen missing (timestamp), while the process lives on.</summary>
    public long? MissingSince { get; set; }

    public bool Handled { get; set; }

    /// <summary>
    /// Starts a child running this same application with a role argument. The child's standard input is a pipe
    /// the supervisor never writes: when the supervisor dies, however it dies, the child reads end-of-file and stops.
    /// </summary>
    public static Process Launch(ChildSpec spec, string name, long supervisorId, IReadOnlyList<string> forwardedArgs)
    {
        var (file, leading) = SelfCommand();
        var info = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
        };
        foreach (var arg in leading)
        {
            info.ArgumentList.Add(arg);
        }

        info.ArgumentList.Add(ChildCommand);
        info.ArgumentList.Add(spec.Kind.ToString());
        info.ArgumentList.Add(spec.WorkerIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        info.ArgumentList.Add(name);
        info.ArgumentList.Add(supervisorId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        info.ArgumentList.Add("--");
        foreach (var arg in forwardedArgs)
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start a child process for {spec}");
        process.EnableRaisingEvents = true;
        return process;
    }

    /// <summary>How to start this application again: its apphost, or <c>dotnet app.dll</c> when run through the muxer.</summary>
    private static (string File, string[] Leading) SelfCommand()
    {
        var processPath = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell this process's executable path, so cannot start child processes");
        if (string.Equals(Path.GetFileNameWithoutExtension(processPath), "dotnet", StringComparison.OrdinalIgnoreCase))
        {
            var entry = Assembly.GetEntryAssembly()?.Location;
            if (string.IsNullOrEmpty(entry))
            {
                throw new InvalidOperationException("running under `dotnet` without an entry assembly path: cannot start child processes");
            }

            return (processPath, [entry]);
        }

        return (processPath, []);
    }
}
