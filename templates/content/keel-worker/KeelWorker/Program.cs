// A Keel worker service.
//   dotnet run                      process mode: a supervisor runs the workers and the dispatcher as child processes of
//                                   this program, so a job that crashes takes down one worker process, not the app
//   dotnet run -- dashboard         the Keel dashboard at http://127.0.0.1:5005/keel (this machine only)
//   dotnet run -- status            the keel commands, against this app's database and jobs (jobs list, jobs show 1…)
using Keel;
using Keel.Dashboard;
using Keel.Hosting;
#if (database == "postgresql")
using Keel.PostgreSql;
#else
using Keel.Sqlite;
#endif
using KeelWorker.Jobs;

if (args is ["dashboard", .. var dashboardArgs])
{
    var web = WebApplication.CreateBuilder(dashboardArgs);
    web.WebHost.UseUrls(web.Configuration["urls"] ?? "http://127.0.0.1:5005");
    AddApplication(web.Services);
    // The dashboard's process only shows and manages jobs; the workers run them.
    web.Services.AddKeel(keel => ConfigureKeel(keel).Configure(o => o.ProcessJobs = false));
    web.Services.AddKeelDashboard();
    var app = web.Build();
    app.MapKeelDashboard("/keel");
    await app.RunAsync();
    return 0;
}

return await KeelApp.RunAsync(args, builder =>
{
    AddApplication(builder.Services);
    builder.Services.AddKeel(keel => ConfigureKeel(keel));
});

// Your services: what the jobs use.
static void AddApplication(IServiceCollection services)
    => services.AddSingleton<IEmailSender, LoggingEmailSender>();

static IKeelBuilder ConfigureKeel(IKeelBuilder keel) => keel
#if (database == "postgresql")
    .UsePostgreSql()                                      // Keel:Database in appsettings.json: a PostgreSQL connection string
#else
    .UseSqlite()                                          // Keel:Database in appsettings.json: a SQLite file
#endif
    .AddJobsFromAssembly(typeof(Program).Assembly)
    .AddRecurring<SendReminder, ReminderArgs>("daily-reminder", "0 9 * * *", new ReminderArgs("team@example.com", "Stand-up at 9:30"));
