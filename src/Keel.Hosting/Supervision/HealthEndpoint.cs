using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace Keel.Hosting.Supervision;

/// <summary>
/// Process mode's probe endpoint: <c>GET /healthz/live</c> runs the checks tagged <c>live</c>, <c>GET /healthz/ready</c>
/// those tagged <c>ready</c>, on <c>http://{HealthCheckHost}:{port}/</c> (System.Net.HttpListener; no ASP.NET Core;
/// loopback by default). Healthy
/// and degraded answer 200, unhealthy 503; the body is a small JSON report.
/// </summary>
internal sealed class HealthEndpoint : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly IKeelStorage _storage;
    private readonly KeelOptions _options;
    private readonly KeelClock _clock;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly string _prefix;
    private Task _loop = Task.CompletedTask;

    private HealthEndpoint(IKeelStorage storage, KeelOptions options, KeelClock clock, ILogger logger, int port)
    {
        _storage = storage;
        _options = options;
        _clock = clock;
        _logger = logger;
        _prefix = string.Create(CultureInfo.InvariantCulture, $"http://{options.HealthCheckHost}:{port}/");
        _listener.Prefixes.Add(_prefix);
    }

    /// <summary>Starts listening; null (after logging why) when the port cannot be bound: supervision goes on without probes.</summary>
    public static HealthEndpoint? Start(IKeelStorage storage, KeelOptions options, KeelClock clock, ILogger logger, int port)
    {
        var endpoint = new HealthEndpoint(storage, options, clock, logger, port);
        try
        {
            endpoint._listener.Start();
        }
        catch (HttpListenerException e)
        {
            Log.HealthEndpointError(logger, e, endpoint._prefix);
            ((IDisposable)endpoint._listener).Dispose();
            endpoint._stop.Dispose();
            return null;
        }

        Log.HealthEndpointListening(logger, endpoint._prefix);
        endpoint._loop = Task.Run(endpoint.AcceptAsync);
        return endpoint;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _listener.Close();
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().WaitAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException e)
            {
                Log.HealthEndpointError(_logger, e, _prefix);
                continue;
            }

            _ = Task.Run(() => RespondAsync(context));
        }
    }

    private async Task RespondAsync(HttpListenerContext context)
    {
        var response = context.Response;
        try
        {
            var path = context.Request.Url?.AbsolutePath.TrimEnd('/') ?? string.Empty;
            string? tag = path switch
            {
                "/healthz/live" => KeelHealthChecksBuilderExtensions.LiveTag,
                "/healthz/ready" => KeelHealthChecksBuilderExtensions.ReadyTag,
                _ => null,
            };
            if (tag is null || context.Request.HttpMethod is not ("GET" or "HEAD"))
            {
                response.StatusCode = 404;
                return;
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var report = await KeelHealthChecks.RunAsync(_storage, _options, _clock, tag, timeout.Token);
            response.StatusCode = report.Status == HealthStatus.Unhealthy ? 503 : 200;
            response.ContentType = "application/json";
            response.AddHeader("Cache-Control", "no-store");
            var body = JsonSerializer.SerializeToUtf8Bytes(new
            {
                status = report.Status.ToString(),
                checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
            });
            await response.OutputStream.WriteAsync(body, _stop.Token);
        }
#pragma warning disable CA1031 // A probe failing must never take the supervisor down.
        catch (Exception e)
#pragma warning restore CA1031
        {
            if (!_stop.IsCancellationRequested)
            {
                Log.HealthEndpointError(_logger, e, _prefix);
                try
                {
                    response.StatusCode = 503;
                    await response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes("unhealthy"));
                }
#pragma warning disable CA1031
                catch (Exception)
#pragma warning restore CA1031
                {
                    // The client is gone.
                }
            }
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (ObjectDisposedException)
            {
            }
            catch (HttpListenerException)
            {
            }
        }
    }
}
