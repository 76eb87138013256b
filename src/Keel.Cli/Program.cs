// The keel tool: every keel command, plus `start` (process mode), `demo` and `dashboard`, against the database given
// by --database, KEEL_DATABASE or Keel:Database in ./appsettings.json, on any engine the tool ships.
using Keel.Dashboard;
using Keel.Hosting;
using Keel.Hosting.Cli;
using Keel.PostgreSql;
using Keel.Sqlite;

return await KeelApp.RunAsync(args, builder => builder.Services.AddKeel(keel => keel.UseSqlite().UsePostgreSql().AddDemoJobs()), [KeelDashboardCommand.Create]);
