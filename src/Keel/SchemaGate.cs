using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel;

/// <summary>Makes sure the database schema fits this code before anything runs.</summary>
public static class SchemaGate
{
    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Migrates when <paramref name="autoMigrate"/> is set; otherwise checks that the database is exactly at the
    /// code's version and says what to run when it is not.
    /// </summary>
    /// <param name="storage">The store.</param>
    /// <param name="autoMigrate">Apply missing migrations.</param>
    /// <param name="logger">Where to report a migration.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task.</returns>
    /// <exception cref="KeelSchemaException">The schema does not fit.</exception>
    public static async Task EnsureAsync(IKeelStorage storage, bool autoMigrate, ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (autoMigrate)
        {
            var before = await storage.SchemaVersionAsync(cancellationToken);
            await storage.MigrateAsync(cancellationToken);
            if (before != storage.LatestSchemaVersion)
            {
                Log.SchemaMigrated(logger, storage.Engine, storage.LatestSchemaVersion);
            }

            return;
        }

        var version = await storage.SchemaVersionAsync(cancellationToken);
        if (version > storage.LatestSchemaVersion)
        {
            throw MigrationScript.NewerThanCode(storage.Engine, version, storage.LatestSchemaVersion);
        }

        if (version == 0 && storage.DescribeMissingDatabase() is { } missing)
        {
            throw new KeelSchemaException(missing);
        }

        if (version < storage.LatestSchemaVersion)
        {
            throw new KeelSchemaException(version == 0
                ? $"the {storage.Engine} database has no Keel schema: run `keel migrate` or set Keel:AutoMigrate to true"
                : $"the {storage.Engine} database is at Keel schema version {version}, this code needs {storage.LatestSchemaVersion}: run `keel migrate` or set Keel:AutoMigrate to true");
        }
    }

    /// <summary>
    /// <see cref="EnsureAsync(IKeelStorage, bool, ILogger, CancellationToken)"/> at a host's start, waiting for a
    /// database that is not reachable yet: a transient error (connection refused or dropped, a server starting or
    /// restarting) is retried with backoff for up to <paramref name="timeout"/>, logged once when it starts failing
    /// and once when it is reachable. Any other error fails at once.
    /// </summary>
    /// <param name="storage">The store.</param>
    /// <param name="autoMigrate">Apply missing migrations.</param>
    /// <param name="timeout">How long to keep trying (<see cref="KeelOptions.StartupTimeout"/>); zero tries once.</param>
    /// <param name="logger">Where to report the wait and a migration.</param>
    /// <param name="timeProvider">The clock the backoff waits on.</param>
    /// <param name="cancellationToken">Cancels the wait (the host is stopping).</param>
    /// <returns>A task.</returns>
    /// <exception cref="KeelStartupException">The database stayed unreachable for <paramref name="timeout"/>.</exception>
    /// <exception cref="KeelSchemaException">The schema does not fit.</exception>
    public static async Task EnsureAtStartAsync(IKeelStorage storage, bool autoMigrate, TimeSpan timeout, ILogger logger, TimeProvider? timeProvider, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(logger);
        timeProvider ??= TimeProvider.System;
        var started = timeProvider.GetTimestamp();
        var backoff = new Runtime.Backoff(FirstRetryDelay, MaxRetryDelay);
        var failing = false;
        while (true)
        {
            try
            {
                await EnsureAsync(storage, autoMigrate, logger, cancellationToken);
                if (failing)
                {
                    Log.StartupDatabaseReachable(logger, storage.Engine, Rounded(timeProvider.GetElapsedTime(started)));
                }

                return;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && e is not KeelSchemaException && storage.IsTransient(e))
            {
                var elapsed = timeProvider.GetElapsedTime(started);
                if (!failing)
                {
                    failing = true;
                    Log.StartupDatabaseUnreachable(logger, storage.Engine, Reason(e), timeout);
                    Log.StartupDatabaseError(logger, e, storage.Engine);
                }

                if (elapsed >= timeout)
                {
                    throw new KeelStartupException($"the {storage.Engine} database could not be reached within Keel:StartupTimeout ({timeout}): {Reason(e)}", e);
                }

                var delay = backoff.Next();
                await Task.Delay(delay < timeout - elapsed ? delay : timeout - elapsed, timeProvider, cancellationToken);
            }
        }
    }

    /// <summary>The innermost error's message: "Connection refused", not the wrapper's "Exception while connecting".</summary>
    private static string Reason(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e.Message;
    }

    private static TimeSpan Rounded(TimeSpan span) => TimeSpan.FromMilliseconds(Math.Round(span.TotalMilliseconds / 100) * 100);
}
