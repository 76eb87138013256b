using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Cli;

/// <summary>
/// The database a command was given, the same way for every command (<c>start</c> and its child processes
/// included): <c>-d</c>/<c>--database</c>, else the <c>KEEL_DATABASE</c> environment variable. Either one overrides
/// the store the program's code chose; without either, the code's choice stands, else <c>Keel:Database</c>.
/// </summary>
internal static class DatabaseArgument
{
    public const string EnvironmentVariable = "KEEL_DATABASE";

    /// <summary>The explicit database: <paramref name="given"/> (from <c>--database</c>), else <c>KEEL_DATABASE</c>; null when neither is set.</summary>
    public static string? Resolve(string? given)
        => !string.IsNullOrWhiteSpace(given) ? given
            : Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnvironment && !string.IsNullOrWhiteSpace(fromEnvironment) ? fromEnvironment
            : null;

    /// <summary>
    /// Makes <paramref name="database"/> the store, whatever the code chose (the last registration wins), opened by the
    /// provider of its engine that the application registered (<c>UseSqlite()</c>, <c>UsePostgreSql()</c>).
    /// </summary>
    public static void Apply(IServiceCollection services, string database)
        => services.AddSingleton(sp => KeelDatabaseSetting.Open(database, sp, "--database"));

    /// <summary>Hides a password in a connection string or URI before it is printed.</summary>
    public static string Redact(string database) => KeelDatabaseSetting.Redact(database);

    /// <summary>
    /// Splits the arguments of <c>start</c>: <c>-d</c>/<c>--database VALUE</c> (or <c>=VALUE</c>) is taken out; what is
    /// left are configuration overrides for the host (<c>--Keel:Workers:0:Processes=3</c>). Anything else that looks
    /// like an option is refused, so that a typo is not read as a setting.
    /// </summary>
    /// <returns>The database given (or null), the host's arguments, and whether help was asked for.</returns>
    /// <exception cref="UsageException">An option <c>start</c> does not know, or <c>--database</c> without a value.</exception>
    public static (string? Database, string[] HostArgs, bool Help) SplitStartArgs(IReadOnlyList<string> args)
    {
        string? database = null;
        var rest = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help" or "-?")
            {
                return (null, [], true);
            }

            if (arg is "-d" or "--database")
            {
                database = i + 1 < args.Count && !args[i + 1].StartsWith('-') ? args[++i] : throw new UsageException($"{arg} needs a value: a SQLite file path, a PostgreSQL connection string (Host=…) or a database URI (postgres://…)");
                continue;
            }

            if (arg.StartsWith("--database=", StringComparison.Ordinal) || arg.StartsWith("-d=", StringComparison.Ordinal))
            {
                database = arg[(arg.IndexOf('=', StringComparison.Ordinal) + 1)..];
                continue;
            }

            // Configuration overrides: --Section:Key=value or --Section:Key value (what the host's command line reads), and
            // the host's own settings (--environment Production…).
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Length > 2 && (arg.Contains(':', StringComparison.Ordinal) || IsHostSetting(arg)))
            {
                rest.Add(arg);
                if (!arg.Contains('=', StringComparison.Ordinal) && i + 1 < args.Count)
                {
                    rest.Add(args[++i]);
                }

                continue;
            }

            throw new UsageException($"start does not take '{arg}': give the database with -d/--database (or KEEL_DATABASE) and settings as --Keel:Key=value, e.g. --Keel:Workers:0:Processes=3");
        }

        return (database, [.. rest], false);
    }

    private static bool IsHostSetting(string arg)
    {
        var name = arg[2..].Split('=', 2)[0];
        return name.Equals("environment", StringComparison.OrdinalIgnoreCase)
            || name.Equals("contentRoot", StringComparison.OrdinalIgnoreCase)
            || name.Equals("applicationName", StringComparison.OrdinalIgnoreCase);
    }

    public const string StartUsage = """
        Usage: start [-d|--database DATABASE] [--Keel:Key=value ...]

        Runs the supervisor with its worker, dispatcher and scheduler child processes (process mode) until SIGTERM or Ctrl+C.
          -d, --database   A SQLite file path, a PostgreSQL connection string (Host=…) or a database URI (postgres://…);
                           overrides the store chosen in code
                           (default: KEEL_DATABASE, then the code's choice, then Keel:Database)
          --Keel:Key=value Any configuration setting, e.g. --Keel:Workers:0:Processes=3 (see docs/configuration.md);
                           also --environment, --contentRoot, --applicationName for the host
        """;
}
