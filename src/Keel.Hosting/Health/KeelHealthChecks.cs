using System.Globalization;
using Keel.Runtime;
using Keel.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Keel.Hosting;

/// <summary>Adds Keel's health checks to <c>services.AddHealthChecks()</c>.</summary>
public static class KeelHealthChecksBuilderExtensions
{
    /// <summary>The tag of checks a liveness probe should run (<c>live</c>).</summary>
    public const string LiveTag = "live";

    /// <summary>The tag of checks a readiness probe should run (<c>ready</c>).</summary>
    public const string ReadyTag = "ready";

    /// <summary>
    /// Adds three checks: <c>keel-database</c> (the store answers; unhealthy otherwise; tagged <c>ready</c>),
    /// <c>keel-heartbeat</c> (every process row this host keeps alive heartbeated within the alive threshold;
    /// tagged <c>live</c> and <c>ready</c>) and <c>keel-stale-claims</c> (degraded when at least
    /// <see cref="KeelOptions.StaleClaimsDegradedThreshold"/> claims belong to processes whose heartbeat is older than
    /// the alive threshold; tagged <c>ready</c>). Requires <c>services.AddKeel(...)</c>.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddKeel(this IHealthChecksBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var check in KeelHealthChecks.Definitions)
        {
            builder.Add(new HealthCheckRegistration(
                check.Name,
                sp => check.Create(sp.GetRequiredService<IKeelStorage>(), sp.GetRequiredService<IOptions<KeelOptions>>().Value, sp.GetRequiredService<KeelClock>()),
                check.FailureStatus,
                check.Tags));
        }

        return builder;
    }
}

/// <summary>Keel's health checks and their names, tags and failure statuses.</summary>
internal static class KeelHealthChecks
{
    public const string Database = "keel-database";
    public const string Heartbeat = "keel-heartbeat";
    public const string StaleClaims = "keel-stale-claims";

    public static IReadOnlyList<Definition> Definitions { get; } =
    [
        new(Database, [KeelHealthChecksBuilderExtensions.ReadyTag], HealthStatus.Unhealthy, (storage, _, _) => new DatabaseCheck(storage)),
        new(Heartbeat, [KeelHealthChecksBuilderExtensions.LiveTag, KeelHealthChecksBuilderExtensions.ReadyTag], HealthStatus.Unhealthy, (storage, options, clock) => new HeartbeatCheck(storage, options, clock)),
        new(StaleClaims, [KeelHealthChecksBuilderExtensions.ReadyTag], HealthStatus.Degraded, (storage, options, clock) => new StaleClaimsCheck(storage, options, clock)),
    ];

    /// <summary>Runs every check carrying <paramref name="tag"/> (all when null) against one store, outside DI.</summary>
    public static async Task<HealthReport> RunAsync(IKeelStorage storage, KeelOptions options, KeelClock clock, string? tag, CancellationToken cancellationToken)
    {
        var entries = new Dictionary<string, HealthReportEntry>(StringComparer.Ordinal);
        var started = clock.TimeProvider.GetTimestamp();
        foreach (var definition in Definitions.Where(d => tag is null || d.Tags.Contains(tag)))
        {
            var check = definition.Create(storage, options, clock);
            var registration = new HealthCheckRegistration(definition.Name, check, definition.FailureStatus, definition.Tags);
            var one = clock.TimeProvider.GetTimestamp();
            HealthCheckResult result;
            try
            {
                result = await check.CheckHealthAsync(new HealthCheckContext { Registration = registration }, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                result = new HealthCheckResult(definition.FailureStatus, e.Message, e);
            }

            entries[definition.Name] = new HealthReportEntry(result.Status, result.Description, clock.TimeProvider.GetElapsedTime(one), result.Exception, result.Data, definition.Tags);
        }

        return new HealthReport(entries, clock.TimeProvider.GetElapsedTime(started));
    }

    internal sealed record Definition(string Name, string[] Tags, HealthStatus FailureStatus, Func<IKeelStorage, KeelOptions, KeelClock, IHealthCheck> Create);

    /// <summary>The store answers a trivial query (the schema version), and has Keel's schema.</summary>
    private sealed class DatabaseCheck(IKeelStorage storage) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                var version = await storage.SchemaVersionAsync(cancellationToken);
                if (version == 0)
                {
                    // A missing SQLite file reads as version 0 too: either way Keel cannot run here.
                    return new HealthCheckResult(context.Registration.FailureStatus, "the database has no Keel schema (missing, or never migrated); run keel migrate or enable AutoMigrate");
                }

                return HealthCheckResult.Healthy(string.Create(CultureInfo.InvariantCulture, $"database reachable (schema version {version})"));
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                return new HealthCheckResult(context.Registration.FailureStatus, "database unreachable: " + e.Message, e);
            }
        }
    }

    /// <summary>Every process row this host keeps alive heartbeated within the alive threshold.</summary>
    private sealed class HeartbeatCheck(IKeelStorage storage, KeelOptions options, KeelClock clock) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var entries = HeartbeatTracker.For(storage).Entries;
            if (entries.Count == 0)
            {
                return Task.FromResult(HealthCheckResult.Healthy("no Keel process is registered in this host"));
            }

            var data = new Dictionary<string, object>(StringComparer.Ordinal);
            var stale = new List<string>();
            foreach (var entry in entries)
            {
                var age = clock.TimeProvider.GetElapsedTime(entry.LastBeat);
                data[entry.Name] = age.TotalSeconds;
                if (age > options.AliveThreshold)
                {
                    stale.Add(string.Create(CultureInfo.InvariantCulture, $"{entry.Name} ({entry.ProcessId}) last heartbeat {age.TotalSeconds:0.#} s ago"));
                }
            }

            return Task.FromResult(stale.Count == 0
                ? HealthCheckResult.Healthy(string.Create(CultureInfo.InvariantCulture, $"{entries.Count} processes heartbeating"), data)
                : new HealthCheckResult(context.Registration.FailureStatus, "heartbeat older than the alive threshold: " + string.Join("; ", stale), null, data));
        }
    }

    /// <summary>Claims whose owner's heartbeat is older than the alive threshold: the owner is probably dead and maintenance is not keeping up.</summary>
    private sealed class StaleClaimsCheck(IKeelStorage storage, KeelOptions options, KeelClock clock) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var threshold = Math.Max(1, options.StaleClaimsDegradedThreshold);
            var stale = await storage.ClaimsListAsync(new ClaimsListParams(null, options.AliveThreshold, threshold, clock.StorageNow), cancellationToken);
            var data = new Dictionary<string, object>(StringComparer.Ordinal) { ["stale_claims"] = stale.Count, ["threshold"] = threshold };
            return stale.Count >= threshold
                ? new HealthCheckResult(HealthStatus.Degraded, string.Create(CultureInfo.InvariantCulture, $"{stale.Count} or more claims belong to processes whose heartbeat is older than {options.AliveThreshold}; oldest: job {stale[0].JobId} on {stale[0].ProcessName}"), null, data)
                : HealthCheckResult.Healthy("no stale claims", data);
        }
    }
}
