using System.Collections.Concurrent;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;

namespace Keel.Bench;

/// <summary>Every claim round trip a host made: its duration (ms) and how many jobs it brought.</summary>
public sealed class ClaimStats
{
    public ConcurrentQueue<(double Milliseconds, int Jobs)> Claims { get; } = new();
}

/// <summary>The PostgreSQL store's interfaces, so a decorated store is still seen as able to LISTEN.</summary>
public interface ITimedPostgresStorage : IKeelStorage, IJobNotifications, IAsyncDisposable, IDisposable;

/// <summary>The SQLite and MariaDB stores' interface (neither can LISTEN: their idle workers poll).</summary>
public interface ITimedSqliteStorage : IKeelStorage;

/// <summary>
/// Decorates the real store and times each claim round trip: <see cref="IKeelStorage.JobsClaimAsync"/> and
/// <see cref="IKeelStorage.JobsCompleteAndClaimAsync"/> (a busy worker's completion batch and its next claim in one
/// round trip); every other call goes straight through. Used by the backlog scenario only.
/// </summary>
public class ClaimTimingProxy : DispatchProxy
{
    private object _target = null!;
    private ClaimStats _stats = null!;

    public static IKeelStorage Wrap(IKeelStorage target, ClaimStats stats)
    {
        IKeelStorage proxy = target is IJobNotifications
            ? DispatchProxy.Create<ITimedPostgresStorage, ClaimTimingProxy>()
            : DispatchProxy.Create<ITimedSqliteStorage, ClaimTimingProxy>();
        var self = (ClaimTimingProxy)(object)proxy;
        self._target = target;
        self._stats = stats;
        return proxy;
    }

    public static IKeelStorage Create(string engine, string database, IServiceProvider services, ClaimStats stats)
        => Wrap(
            engine switch
            {
                "postgres" => new PostgreSqlStorage(new PostgreSqlStorageOptions { ConnectionString = database }),
                "mysql" => new MySqlStorage(new MySqlStorageOptions { ConnectionString = MySqlEngine.ConnectionStringOf(database) }),
                _ => new SqliteStorage(new SqliteStorageOptions { ConnectionString = database }, (TimeProvider?)services.GetService(typeof(TimeProvider))),
            },
            stats);

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (targetMethod.Name == nameof(IKeelStorage.JobsClaimAsync))
        {
            var started = Stopwatch.GetTimestamp();
            return TimeAsync((Task<IReadOnlyList<ClaimedJob>>)Call(targetMethod, args)!, started);
        }

        if (targetMethod.Name == nameof(IKeelStorage.JobsCompleteAndClaimAsync))
        {
            var started = Stopwatch.GetTimestamp();
            return TimeBothAsync((Task<CompleteAndClaimResult>)Call(targetMethod, args)!, started);
        }

        return Call(targetMethod, args);
    }

    private async Task<IReadOnlyList<ClaimedJob>> TimeAsync(Task<IReadOnlyList<ClaimedJob>> claim, long started)
    {
        var jobs = await claim;
        _stats.Claims.Enqueue((Stopwatch.GetElapsedTime(started).TotalMilliseconds, jobs.Count));
        return jobs;
    }

    private async Task<CompleteAndClaimResult> TimeBothAsync(Task<CompleteAndClaimResult> call, long started)
    {
        var result = await call;
        _stats.Claims.Enqueue((Stopwatch.GetElapsedTime(started).TotalMilliseconds, result.Claimed.Count));
        return result;
    }

    private object? Call(MethodInfo method, object?[]? args)
    {
        try
        {
            return method.Invoke(_target, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
