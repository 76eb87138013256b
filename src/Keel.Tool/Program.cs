// The keel tool: every keel command, plus `start` (process mode), `demo` and `dashboard`, against the database given
// by --database, KEEL_DATABASE or Keel:Database in ./appsettings.json, on every engine the tool ships.
using Keel.Cli;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Tool;

return await KeelApp.RunAsync(args, builder => builder.Services.AddKeel(keel => keel.UseSqlite().UsePostgreSql().UseMySql().AddDemoJobs()), [DashboardCommand.Create]);
