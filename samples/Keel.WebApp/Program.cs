// Keel in an ASP.NET Core app: POST /orders enqueues a job inside the request's trace; workers run in-process.
// OpenTelemetry exports Keel's metrics and traces to the console; set Telemetry:Prometheus to true to also serve
// a Prometheus scraping endpoint at /metrics. Health checks: /healthz/live and /healthz/ready. The Keel dashboard is
// at /keel (from this machine only, as no authorization policy is configured).
// Run it with: dotnet run --project samples/Keel.WebApp   then   curl -X POST localhost:5000/orders   and open localhost:5000/keel
using Keel;
using Keel.Dashboard;
using Keel.Hosting;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.WebApp;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

var builder = WebApplication.CreateBuilder(args);
var prometheus = builder.Configuration.GetValue<bool>("Telemetry:Prometheus");

builder.Services.AddKeel(keel => keel.UseSqlite().UsePostgreSql().AddJob<FulfilOrder>()); // the engines Keel:Database may name
builder.Services.AddKeelDashboard();
builder.Services.AddHealthChecks().AddKeel();
builder.Services.AddOpenTelemetry()
    .ConfigureResource(resource => resource.AddService("keel-web-app"))
    .WithMetrics(metrics =>
    {
        metrics.AddMeter(KeelMetrics.MeterName).AddMeter("Microsoft.AspNetCore.Hosting");
        metrics.AddConsoleExporter((_, reader) => reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 30_000);
        if (prometheus)
        {
            metrics.AddPrometheusExporter();
        }
    })
    .WithTracing(tracing => tracing
        .AddSource(KeelTracing.SourceName, "Microsoft.AspNetCore")
        .AddConsoleExporter());

var app = builder.Build();

app.MapPost("/orders", async (OrderArgs? order, IKeelClient keel, CancellationToken ct) =>
{
    order ??= new OrderArgs(Random.Shared.Next(1000, 9999), 3);
    var id = await keel.EnqueueAsync<FulfilOrder, OrderArgs>(order, cancellationToken: ct);
    return Results.Accepted($"/jobs/{id}", new { jobId = id });
});

app.MapGet("/jobs/{id:long}", async (long id, IKeelClient keel, CancellationToken ct)
    => await keel.GetJobAsync(id, ct) is { } job ? Results.Ok(new { job.Id, job.Kind, State = job.State.ToString(), job.Attempts }) : Results.NotFound());

app.MapHealthChecks("/healthz/live", new HealthCheckOptions { Predicate = check => check.Tags.Contains(KeelHealthChecksBuilderExtensions.LiveTag) });
app.MapHealthChecks("/healthz/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains(KeelHealthChecksBuilderExtensions.ReadyTag) });
app.MapKeelDashboard("/keel");
if (prometheus)
{
    app.MapPrometheusScrapingEndpoint(); // GET /metrics
}

await app.RunAsync();
