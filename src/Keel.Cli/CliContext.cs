using System.Data.Common;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using Keel.Registry;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace Keel.Cli;

/// <summary>
/// What a command works with: the application's Keel services (built from its configuration, never started),
/// the database from <c>--database</c>, <c>KEEL_DATABASE</c> or <c>Keel:Database</c> in appsettings.json, and the
/// output writers.
/// </summary>
internal sealed class CliContext(IHost host, TextWriter output, TextWriter error, IAnsiConsole console) : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public IServiceProvider Services => host.Services;

    public IKeelStorage Storage => Services.GetRequiredService<IKeelStorage>();

    public IKeelAdmin Admin => Services.GetRequiredService<IKeelAdmin>();

    public IKeelClient Client => Services.GetRequiredService<IKeelClient>();

    public IKeelRecurring Recurring => Services.GetRequiredService<IKeelRecurring>();

    public KeelOptions Options => Services.GetRequiredService<IOptions<KeelOptions>>().Value;

    public TextWriter Out { get; } = output;

    public TextWriter Error { get; } = error;

    public IAnsiConsole Console { get; } = console;

    /// <summary>Builds the services of the application described by <paramref name="configure"/>, pointed at <paramref name="database"/> when given.</summary>
    public static CliContext Create(string? database, Action<HostApplicationBuilder> configure, TextWriter output, TextWriter error)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = Environment.CurrentDirectory });
        builder.Logging.ClearProviders();
        configure(builder);
        if (DatabaseArgument.Resolve(database) is { } chosen)
        {
            DatabaseArgument.Apply(builder.Services, chosen);
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output), Interactive = InteractionSupport.No });
        // Redirected output (a pipe, a test) gets wide tables instead of 80-column wrapping.
        console.Profile.Width = ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected ? System.Console.WindowWidth : 200;
        return new CliContext(builder.Build(), output, error, console);
    }

    /// <summary>Fails with the schema error unless the database is exactly at this code's schema version.</summary>
    public Task RequireSchemaAsync(CancellationToken cancellationToken)
        => SchemaGate.EnsureAsync(Storage, autoMigrate: false, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, cancellationToken);

    public IReadOnlyList<string> ValidateJobs() => Services.GetRequiredService<JobRegistry>().Validate();

    public void WriteJson<T>(T value) => Out.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>Runs a command, turning every failure into one line on stderr and a documented exit code.</summary>
    public static async Task<int> RunAsync(string? database, Action<HostApplicationBuilder> configure, TextWriter output, TextWriter error, Func<CliContext, Task<int>> command)
    {
        try
        {
            using var context = Create(database, configure, output, error);
            return await command(context);
        }
        catch (Exception e)
        {
            var (code, message) = Classify(e);
            await error.WriteLineAsync("keel: " + message);
            return code;
        }
    }

    private static (int Code, string Message) Classify(Exception e) => e switch
    {
        OptionsValidationException v => (ExitCodes.InvalidConfiguration, "invalid configuration: " + string.Join("; ", v.Failures)),
        KeelSchemaException s => (ExitCodes.SchemaMismatch, s.Message),
        KeelDatabaseReadOnlyException r => (ExitCodes.DatabaseReadOnly, r.Message),
        KeelStartupException u => (ExitCodes.DatabaseUnreachable, u.Message),
        NotFoundException n => (ExitCodes.NotFound, n.Message),
        UsageException u => (ExitCodes.Usage, u.Message),
        OperationCanceledException => (ExitCodes.Failure, "cancelled"),
        KeelDatabaseSettingException a when a.Message.StartsWith("no Keel database", StringComparison.Ordinal)
            => (ExitCodes.InvalidConfiguration, "no database given: pass --database (a SQLite file, a PostgreSQL connection string or a database URI), set KEEL_DATABASE, or set Keel:Database in appsettings.json"),
        KeelDatabaseSettingException d => (ExitCodes.InvalidConfiguration, d.Message),
        ArgumentException a when a.Message.Contains("database", StringComparison.OrdinalIgnoreCase) || a.Message.Contains("connection", StringComparison.OrdinalIgnoreCase) || a.Message.Contains("initialization string", StringComparison.OrdinalIgnoreCase) || a.Message.Contains("keyword", StringComparison.OrdinalIgnoreCase)
            => (ExitCodes.InvalidConfiguration, "invalid database setting: " + a.Message.Split(" (Parameter", 2)[0]),
        DbException or SocketException or IOException or TimeoutException => (ExitCodes.DatabaseUnreachable, "cannot reach the database: " + Innermost(e).Message),
        InvalidOperationException when Innermost(e) is DbException or SocketException => (ExitCodes.DatabaseUnreachable, "cannot reach the database: " + Innermost(e).Message),
        AggregateException { InnerException: { } inner } => Classify(inner),
        _ when e.InnerException is DbException or SocketException => (ExitCodes.DatabaseUnreachable, "cannot reach the database: " + Innermost(e).Message),
        _ => (ExitCodes.Failure, e.Message),
    };

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }

    public void Dispose() => host.Dispose();
}
