// The keel tool: every keel command, plus `start` (process mode), `demo` and `dashboard`, against the database given
// by --database, KEEL_DATABASE or Keel:Database in ./appsettings.json.
using Keel.Dashboard;
using Keel.Hosting;
using Keel.Hosting.Cli;

return await KeelApp.RunAsync(args, builder => builder.Services.AddKeel(keel => keel.AddDemoJobs()), [KeelDashboardCommand.Create]);
