using System.Globalization;
using System.Runtime.InteropServices;
using Keel.Hosting.Supervision;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Keel.Hosting;

/// <summary>
/// Process mode, from your own <c>Program.cs</c>:
/// <code>return await KeelApp.RunAsync(args, builder => builder.Services.AddKeel(k => k.UseSqlite("keel.db").AddJob&lt;MyJob&gt;()));</code>
/// <c>start</c> (the default) runs a supervisor that starts each worker process and the dispatcher as child OS
/// processes of this same program, watches them, recovers a dead child's claims at once and replaces it.
/// </summary>
public static class KeelApp
{
    /// <summary>The first argument that makes this program run as a supervisor's child.</summary>
    public const string ChildCommand = ChildProcess.ChildCommand;

    /// <summary>Runs the command in <paramref name="args"/>; returns the process exit code.</summary>
    /// <param name="args">The program's arguments: a command, then configuration overrides such as <c>--Keel:Database=keel.db</c>.</param>
    /// <param name="configure">Configures the host: call <c>builder.Services.AddKeel(…)</c> here.</param>
    /// <param name="cancellationToken">Stops the run gracefully.</param>
    /// <returns>0 on success; 2 for a usage error; 1 when start-up failed.</returns>
    public static Task<int> RunAsync(string[] args, Action<HostApplicationBuilder> configure, CancellationToken cancellationToken = default)
        => RunAsync(args, configure, [], cancellationToken);

    /// <summary>Runs the command in <paramref name="args"/>, with extra <c>keel</c> commands from other packages; returns the process exit code.</summary>
    /// <param name="args">The program's arguments: a command, then configuration overrides such as <c>--Keel:Database=keel.db</c>.</param>
    /// <param name="configure">Configures the host: call <c>builder.Services.AddKeel(…)</c> here.</param>
    /// <param name="commands">Extra commands of the command line, e.g. <c>KeelDashboardCommand.Create</c> for <c>dashboard</c>.</param>
    /// <param name="cancellationToken">Stops the run gracefully.</param>
    /// <returns>0 on success; 2 for a usage error; 1 when start-up failed.</returns>
    public static async Task<int> RunAsync(string[] args, Action<HostApplicationBuilder> configure, IReadOnlyList<Cli.KeelCliCommand> commands, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(configure);
        ArgumentNullException.ThrowIfNull(commands);
        if (args.Length > 0 && args[0] == ChildCommand)
        {
            return await RunChildAsync(args, configure, cancellationToken);
        }

        if (StartArgs(args) is { } start)
        {
            return await StartAsync(start, configure, cancellationToken);
        }

        // Every other command is the keel command line, against this application's configuration.
        return await Cli.KeelCli.RunAsync(args, configure, commands, cancellationToken: cancellationToken);
    }

    /// <summary>
    /// The arguments of <c>start</c> when the command line asks for it: no arguments, <c>start …</c>, a database option
    /// before it (<c>-d keel.db start</c>), or settings only (<c>--Keel:Workers:0:Processes=3</c>). Null for every other command.
    /// </summary>
    private static string[]? StartArgs(string[] args)
    {
        if (args.Length == 0 || args[0].StartsWith("--Keel:", StringComparison.OrdinalIgnoreCase))
        {
            return args;
        }

        var i = 0;
        var before = new List<string>();
        while (i < args.Length && args[i] is "-d" or "--database" && i + 1 < args.Length)
        {
            before.Add(args[i++]);
            before.Add(args[i++]);
        }

        while (i < args.Length && (args[i].StartsWith("--database=", StringComparison.Ordinal) || args[i].StartsWith("-d=", StringComparison.Ordinal)))
        {
            before.Add(args[i++]);
        }

        return i < args.Length && args[i] == "start" ? [.. before, .. args[(i + 1)..]] : null;
    }

    /// <summary><c>start</c>: reads its arguments the way every other command does, then runs the supervisor.</summary>
    private static async Task<int> StartAsync(string[] args, Action<HostApplicationBuilder> configure, CancellationToken cancellationToken)
    {
        string? database;
        string[] hostArgs;
        try
        {
            (database, hostArgs, var help) = Cli.DatabaseArgument.SplitStartArgs(args);
            if (help)
            {
                await Console.Out.WriteLineAsync(Cli.DatabaseArgument.StartUsage);
                return Cli.ExitCodes.Success;
            }
        }
        catch (Cli.UsageException e)
        {
            await Console.Error.WriteLineAsync("keel: " + e.Message);
            return Cli.ExitCodes.Usage;
        }

        // A database given on the command line is handed to the children on theirs; one from KEEL_DATABASE reaches
        // them through the environment they inherit (so a password stays off every process's command line).
        var forwarded = database is null ? hostArgs : [.. hostArgs, "--database", database];
        return await RunSupervisorAsync(forwarded, configure, cancellationToken);
    }

    /// <summary>Runs the supervisor; <paramref name="args"/> are what <c>start</c> takes (<c>-d</c>, <c>--Keel:…</c> settings).</summary>
    internal static async Task<int> RunSupervisorAsync(string[] args, Action<HostApplicationBuilder> configure, CancellationToken cancellationToken)
    {
        var (database, hostArgs, _) = Cli.DatabaseArgument.SplitStartArgs(args);
        var builder = Host.CreateApplicationBuilder(hostArgs);
        configure(builder);
        if (Cli.DatabaseArgument.Resolve(database) is { } chosen)
        {
            Cli.DatabaseArgument.Apply(builder.Services, chosen);
        }

        builder.Services.AddSingleton(new KeelRole(KeelRoleKind.Supervisor, 0, string.Empty, null));
        builder.Services.AddSingleton<IHostLifetime, KeelLifetime>();
        using var host = builder.Build();
        using var immediate = new CancellationTokenSource();
        // SIGQUIT: exit at once; children are told to quit too and their claims are recovered like any crash's.
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, context =>
        {
            context.Cancel = true;
            immediate.Cancel();
        });
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch (Exception e) when (e is OptionsValidationException or KeelSchemaException or InvalidOperationException or KeelDatabaseSettingException or KeelStartupException)
        {
            await Console.Error.WriteLineAsync("keel: " + e.Message);
            return 1;
        }

        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping, cancellationToken);
        var supervisor = new Supervisor(
            host.Services.GetRequiredService<IKeelStorage>(),
            host.Services.GetRequiredService<IOptions<KeelOptions>>().Value,
            host.Services.GetRequiredService<ILoggerFactory>(),
            host.Services.GetRequiredService<KeelClock>(),
            args);
        var code = await supervisor.RunAsync(stopping.Token, immediate.Token);
        if (immediate.IsCancellationRequested)
        {
            return 131;
        }

        await host.StopAsync(CancellationToken.None);
        return code;
    }

    private static async Task<int> RunChildAsync(string[] args, Action<HostApplicationBuilder> configure, CancellationToken cancellationToken)
    {
        // __keel-child <Worker|Dispatcher|Scheduler> <index> <name> <supervisorId> -- <forwarded args>
        var separator = Array.IndexOf(args, "--");
        if (args.Length < 5 || separator != 5 || !Enum.TryParse<KeelRoleKind>(args[1], out var kind))
        {
            await Console.Error.WriteLineAsync($"keel: malformed child arguments: {string.Join(' ', args)}");
            return 2;
        }

        var role = new KeelRole(kind, int.Parse(args[2], CultureInfo.InvariantCulture), args[3], long.Parse(args[4], CultureInfo.InvariantCulture));
        var (database, hostArgs, _) = Cli.DatabaseArgument.SplitStartArgs(args[(separator + 1)..]);
        var builder = Host.CreateApplicationBuilder(hostArgs);
        configure(builder);
        if (Cli.DatabaseArgument.Resolve(database) is { } chosen)
        {
            Cli.DatabaseArgument.Apply(builder.Services, chosen);
        }

        // Every line a child logs names it (the scope below): children share their supervisor's console.
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.SimpleConsoleFormatterOptions>(o => o.IncludeScopes = true);
        builder.Services.AddSingleton(role);
        builder.Services.AddSingleton<IHostLifetime, KeelLifetime>();
        using var host = builder.Build();
        // SIGQUIT: exit at once, without releasing anything; the supervisor recovers the claims when it sees the exit.
        using var quit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, context =>
        {
            context.Cancel = true;
            Posix.Signal(Environment.ProcessId, Posix.SIGKILL);
        });
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        _ = WatchParentAsync(lifetime);
        using (host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Keel").BeginScope("{Role} {ProcessName} pid {Pid}", kind.ToString().ToLowerInvariant(), role.Name, Environment.ProcessId))
        {
            await host.RunAsync(cancellationToken);
        }

        return 0;
    }

    /// <summary>Stops this child when its supervisor is gone: the stdin pipe from the supervisor reaches end-of-file.</summary>
    private static async Task WatchParentAsync(IHostApplicationLifetime lifetime)
    {
        try
        {
            await using var stdin = Console.OpenStandardInput();
            var buffer = new byte[64];
            while (await stdin.ReadAsync(buffer) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        lifetime.StopApplication();
    }
}
