// A real Keel application in process mode, driven by the process tests: they start it, kill its children and
// read the database and the run log afterwards.
using Keel;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.TestApp;

// A worker child that dies at once, before it registers, every time: the supervisor's crash-loop pause under test.
if (args is ["__keel-child", "Worker", ..] && args.Contains("--Test:CrashWorkersAtStart=true"))
{
    return 3;
}

return await KeelApp.RunAsync(args, builder =>
{
    RunLog.Folder = builder.Configuration["Test:RunLog"];
    builder.Services.AddKeel(keel => keel
        .UseSqlite()
        .UsePostgreSql()
        .UseMySql()
        .AddJob<RecordedJob>()
        .AddJob<StubbornJob>()
        .AddJob<SuicideJob>()
        .AddJob<FailFastJob>()
        .AddJob<OvertimeJob>(job => job.Timeout = TimeSpan.FromMilliseconds(300))
        .AddJob<ChaosJob>(job => job.MaxWorkerLosses = 1000)
        .AddJob<CheckpointedJob>(job => job.MaxWorkerLosses = 10)
        .AddJob<LimitedJob>(job => job.LimitConcurrency<SleepArgs>(_ => "shared", limit: 1)));
});
