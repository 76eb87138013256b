using System.CommandLine;

namespace Keel.Cli;

public static partial class KeelCli
{
    private static Command DemoCommand(Io io)
    {
        var command = new Command("demo", "Run Keel's demo: a supervisor with worker processes running a mix of jobs, one of which kills its own worker");
        var postgres = new Option<string?>("--postgres") { Description = "Run against this PostgreSQL connection string instead of a SQLite file in the current folder" };
        command.Options.Add(postgres);
        command.SetAction((parse, ct) => Demo.RunAsync(parse.GetValue(postgres) ?? parse.GetValue(DatabaseOption), io.Configure, io.Output, io.Error, ct));
        return command;
    }
}
