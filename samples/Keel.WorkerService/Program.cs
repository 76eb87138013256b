// Keel worker service: jobs run in-process in a generic host, with OpenTelemetry metrics and traces written to the
// console. Run it with: dotnet run --project samples/Keel.WorkerService
// A small producer enqueues a job every second so there is something to see; Keel:Database picks the store
// (appsettings.json: a SQLite file by default, or a PostgreSQL connection string).
using Keel;
using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.WorkerService;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

var builder = Host.CreateApplicationBuilder(args);
builder.Services.AddKeel(keel => keel.UseSqlite().UsePostgreSql().AddJob<ResizeImage>()); // the engines Keel:Database may name
builder.Services.AddHealthChecks().AddKeel();
builder.Services.AddHostedService<Producer>();

builder.Services.AddOpenTelemetry()
    .ConfigureResource(resource => resource.AddService("keel-worker-service"))
    .WithMetrics(metrics => metrics
        .AddMeter(KeelMetrics.MeterName)
        .AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 15_000))
    .WithTracing(tracing => tracing
        .AddSource(KeelTracing.SourceName, Producer.SourceName)
        .AddConsoleExporter());

await builder.Build().RunAsync();
