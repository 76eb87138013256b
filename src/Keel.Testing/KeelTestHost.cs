using System.Text.Json;
using Keel.Hosting;
using Keel.Registry;
using Keel.Runtime;
using Keel.Sqlite;
using Keel.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Keel.Testing;

/// <summary>
/// Keel for a test: your jobs and services on a temporary SQLite file with a fake clock, and no background loop — jobs
/// run when the test says so (<see cref="RunUntilIdleAsync"/>), one at a time, through the same executor, failure
/// decision, storage operations and scheduler as a real worker, so what the database holds afterwards is what
/// production would hold.
/// </summary>
/// <example>
/// <code>
/// await using var keel = await KeelTestHost.StartAsync(k => k.AddJob&lt;SendWelcomeEmail&gt;(), services => services.AddSingleton&lt;IMailer&gt;(mailer));
/// await keel.Client.EnqueueAsync&lt;SendWelcomeEmail, WelcomeArgs&gt;(new("ada@example.com"));
/// await keel.RunUntilIdleAsync();
/// await keel.AssertPerformedAsync&lt;SendWelcomeEmail, WelcomeArgs&gt;(a => a.Email == "ada@example.com");
/// </code>
/// </example>
public sealed partial class KeelTestHost : IAsyncDisposable
{
    private readonly ServiceProvider _provider;
    private readonly IKeelStorage _storage;
    private readonly JobExecutor _executor;
    private readonly JobRegistry _registry;
    private readonly KeelOptions _options;
    private readonly Scheduler _scheduler;
    private readonly Random _jitter;
    private readonly SemaphoreSlim _drainGate = new(1, 1);
    private readonly AsyncLocal<bool> _inDrain = new();
    private readonly List<KeelTestRun> _runs = [];
    private readonly string _connectionString;
    private long _workerId;
    private string _runner = "{}";
    private bool _disposed;
    private volatile bool _killRequested;

    private KeelTestHost(ServiceProvider provider, FakeTimeProvider time, string databasePath, string connectionString, KeelTestOptions options)
    {
        _provider = provider;
        Time = time;
        DatabasePath = databasePath;
        _connectionString = connectionString;
        StartedAt = time.GetUtcNow();
        _storage = provider.GetRequiredService<IKeelStorage>();
        _executor = provider.GetRequiredService<JobExecutor>();
        _registry = provider.GetRequiredService<JobRegistry>();
        _options = provider.GetRequiredService<IOptions<KeelOptions>>().Value;
        _jitter = new Random(options.RetryJitterSeed);
        var logger = provider.GetRequiredService<ILoggerFactory>().CreateLogger("Keel.Testing");
        _scheduler = new Scheduler(_storage, _registry, provider.GetRequiredService<JobSignal>(), _options, logger, provider.GetRequiredService<KeelClock>());
    }

    /// <summary>The fake clock every part of Keel reads (and that your services get as <see cref="TimeProvider"/>).</summary>
    public FakeTimeProvider Time { get; }

    /// <summary>The temporary SQLite file; deleted when the host is disposed.</summary>
    public string DatabasePath { get; }

    /// <summary>The fake clock's time when the host started.</summary>
    public DateTimeOffset StartedAt { get; }

    /// <summary>Your services with Keel's, as your jobs see them.</summary>
    public IServiceProvider Services => _provider;

    /// <summary>The client to enqueue with (in inline mode, one that runs what it enqueued before returning).</summary>
    public IKeelClient Client => _provider.GetRequiredService<IKeelClient>();

    /// <summary>The admin API over the same database (retry, discard, pause queues…).</summary>
    public IKeelAdmin Admin => _provider.GetRequiredService<IKeelAdmin>();

    /// <summary>The store itself, for what the other members do not cover.</summary>
    public IKeelStorage Storage => _storage;

    /// <summary>Every run this host made, oldest first.</summary>
    public IReadOnlyList<KeelTestRun> Runs
    {
        get
        {
            lock (_runs)
            {
                return [.. _runs];
            }
        }
    }

    /// <summary>
    /// Creates a temporary SQLite database, applies Keel's schema and registers your jobs and services. Nothing runs in
    /// the background: call <see cref="RunUntilIdleAsync"/>.
    /// </summary>
    /// <param name="configure">Registers the jobs (<c>AddJob</c>, <c>AddRecurring</c>…); a store chosen here is replaced by the test database.</param>
    /// <param name="services">Adds your own services (fakes of what your jobs call).</param>
    /// <param name="options">Start time, inline mode.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <returns>The started host; dispose it to delete its database.</returns>
    public static async Task<KeelTestHost> StartAsync(Action<IKeelBuilder> configure, Action<IServiceCollection>? services = null, KeelTestOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configure);
        options ??= new KeelTestOptions();
        var time = new FakeTimeProvider(options.StartAt);
        var path = Path.Combine(Path.GetTempPath(), $"keel-test-{Guid.NewGuid():N}.db");
        var connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString();

        var collection = new ServiceCollection();
        collection.AddLogging();
        collection.AddSingleton<TimeProvider>(time);
        collection.AddSingleton(time);
        services?.Invoke(collection);
        if (collection.Any(d => d.ServiceType == typeof(JobRegistry) || d.ServiceType == typeof(IKeelStorage)))
        {
            // A second AddKeel would lose to the first (its registrations are TryAdd): the test would run on the store
            // the application chose, maybe a real database, and without the jobs registered here.
            throw new InvalidOperationException("the services callback of KeelTestHost.StartAsync called AddKeel: register jobs and recurring tasks in its configure callback instead, so that Keel runs on the test host's temporary database");
        }

        collection.AddKeel(k =>
        {
            configure(k);
            k.UseSqlite(connectionString);
            // Finished jobs stay, so that AssertPerformedAsync can find them.
            k.Configure(o => o.PreserveFinishedJobs = true);
        });

        KeelTestHost? host = null;
        if (options.Inline)
        {
            // The runtime's client, wrapped: your services asking for IKeelClient get the inline one.
            collection.AddSingleton<KeelClient>();
            collection.Replace(ServiceDescriptor.Singleton<IKeelClient>(sp => new InlineKeelClient(sp.GetRequiredService<KeelClient>(), () => host!)));
        }

        var provider = collection.BuildServiceProvider(new ServiceProviderOptions { ValidateScopes = true });
        try
        {
            host = new KeelTestHost(provider, time, path, connectionString, options);
            await host.InitializeAsync(cancellationToken);
            return host;
        }
        catch
        {
            if (host is not null)
            {
                await host.DisposeAsync();
            }
            else
            {
                await provider.DisposeAsync();
                DeleteDatabase(path);
            }

            throw;
        }
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var problems = _registry.Validate();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException("the jobs registered for the test host are invalid: " + string.Join("; ", problems));
        }

        await _storage.MigrateAsync(cancellationToken);
        await RegisterWorkerAsync(cancellationToken);
        await _scheduler.SyncStaticTasksAsync(cancellationToken);
        // The scheduler's first pass starts every task's cursor at the start time: ticks from then on are enqueued.
        await _scheduler.RunOnceAsync(Time.GetUtcNow(), cancellationToken);
    }

    /// <summary>Registers the process row the drain claims under (again, after KillWorker killed the last one).</summary>
    private async Task RegisterWorkerAsync(CancellationToken cancellationToken)
    {
        _workerId = await RegisterAsync("worker", cancellationToken);
        _runner = new Runner(_workerId, "keel-test-worker", Environment.ProcessId, Environment.MachineName).ToJson();
    }

    private Task<long> RegisterAsync(string name, CancellationToken cancellationToken)
        => _storage.ProcessRegisterAsync(
            new ProcessRegisterParams($"keel-test-{name}-{Guid.NewGuid():N}"[..32], "Worker", Environment.ProcessId, Environment.MachineName, Time.GetUtcNow(), null, JsonSerializer.Serialize(new { test = true }), Time.GetUtcNow())
            {
                LeaseDuration = LongLease,
            },
            cancellationToken);

    // Nothing prunes processes in a test host; a lease far beyond any clock jump keeps the rows valid in every check.
    private static readonly TimeSpan LongLease = TimeSpan.FromDays(365 * 100);

    /// <summary>Deletes the temporary database.</summary>
    /// <returns>A task that completes when the host is gone.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _provider.DisposeAsync();
        _drainGate.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
        DeleteDatabase(DatabasePath);
    }

    private static void DeleteDatabase(string path)
    {
        foreach (var file in new[] { path, path + "-wal", path + "-shm", path + "-journal" })
        {
            try
            {
                File.Delete(file);
            }
            catch (IOException)
            {
                // A file another handle still holds stays behind in the temp folder; the test's result does not depend on it.
            }
        }
    }

    private void Record(KeelTestRun run)
    {
        lock (_runs)
        {
            _runs.Add(run);
        }
    }
}
