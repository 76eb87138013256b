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
    public const string ChildCommand = "__keel-child";

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

        if (args.Length == 0 || args[0] == "start")
        {
            return await RunSupervisorAsync(args.Length == 0 ? args : args[1..], configure, cancellationToken);
        }

        if (args[0].StartsWith("--Keel:", StringComparison.OrdinalIgnoreCase))
        {
            return await RunSupervisorAsync(args, configure, cancellationToken);
        }

        // Every other command is the keel command line, against this application's configuration.
        return await Cli.KeelCli.RunAsync(args, configure, commands, cancellationToken: cancellationToken);
    }

    internal static async Task<int> RunSupervisorAsync(string[] args, Action<HostApplicationBuilder> configure, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder(args);
        configure(builder);
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
        catch (Exception e) when (e is OptionsValidationException or KeelSchemaException or InvalidOperationException)
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
        var builder = Host.CreateApplicationBuilder(args[(separator + 1)..]);
        configure(builder);
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
