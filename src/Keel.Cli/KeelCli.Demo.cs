using System.CommandLine;
using Keel.Storage;

namespace Keel.Cli;

public static partial class KeelCli
{
    private static Command DemoCommand(Io io)
    {
        var command = new Command("demo", "Run Keel's demo: a supervisor with worker processes running a mix of jobs, one of which kills its own worker");
        var postgres = new Option<string?>("--postgres") { Description = "Run against this PostgreSQL database (Host=… or postgres://…) instead of a SQLite file in the current folder" };
        var mysql = new Option<string?>("--mysql") { Description = "Run against this MariaDB/MySQL database (mysql://user:password@host:port/database) instead of a SQLite file in the current folder" };
        command.Options.Add(postgres);
        command.Options.Add(mysql);
        command.Validators.Add(result =>
        {
            if (result.GetValue(mysql) is { } uri && !uri.StartsWith("mysql://", StringComparison.OrdinalIgnoreCase) && !uri.StartsWith("mariadb://", StringComparison.OrdinalIgnoreCase))
            {
                result.AddError($"--mysql takes a mysql://user:password@host:port/database URI (was '{KeelDatabaseSetting.Redact(uri)}')");
            }

            if (new[] { result.GetValue(postgres), result.GetValue(mysql), result.GetValue(DatabaseOption) }.Count(v => v is not null) > 1)
            {
                result.AddError("give the demo one database: --postgres, --mysql or --database");
            }
        });
        command.SetAction((parse, ct) => Demo.RunAsync(parse.GetValue(postgres) ?? parse.GetValue(mysql) ?? parse.GetValue(DatabaseOption), io.Configure, io.Output, io.Error, ct));
        return command;
    }
}
