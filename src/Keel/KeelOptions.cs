using System.Text.Json;

namespace Keel;

/// <summary>Keel's settings, bound from the <c>Keel</c> configuration section.</summary>
public sealed class KeelOptions
{
    /// <summary>The configuration section Keel binds.</summary>
    public const string SectionName = "Keel";

    /// <summary>
    /// The database: a SQLite file path (<c>keel.db</c>) or a PostgreSQL connection string
    /// (<c>Host=…;Database=…</c>). Used when no store was chosen in code with <c>UseSqlite</c> or <c>UsePostgreSql</c>.
    /// </summary>
    public string? Database { get; set; }

    /// <summary>Apply missing schema migrations at start. Default true; turn off to migrate with <c>keel migrate</c> only.</summary>
    public bool AutoMigrate { get; set; } = true;

    /// <summary>Keep finished jobs (with their finish time) instead of deleting them. Default true.</summary>
    public bool PreserveFinishedJobs { get; set; } = true;

    /// <summary>
    /// How long finished and discarded jobs are kept before maintenance deletes them, in batches. Default one day;
    /// null keeps them forever. Failed jobs are kept until retried or discarded.
    /// </summary>
    public TimeSpan? ClearFinishedJobsAfter { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Run workers and the dispatcher in this process. False makes this process enqueue only.</summary>
    public bool ProcessJobs { get; set; } = true;

    /// <summary>The worker pools. Empty means one worker on every queue with the defaults.</summary>
    public IList<WorkerOptions> Workers { get; } = new List<WorkerOptions>();

    /// <summary>The dispatcher that moves due scheduled jobs (delays and retries) to ready.</summary>
    public DispatcherOptions Dispatcher { get; set; } = new();

    /// <summary>The scheduler that enqueues recurring tasks.</summary>
    public SchedulerOptions Scheduler { get; set; } = new();

    /// <summary>
    /// Static recurring tasks, keyed by task key (<c>Keel:Recurring:&lt;key&gt;:Schedule</c>…). Synchronised to the
    /// database when a scheduler starts: a task removed from here is removed there. Empty by default.
    /// </summary>
    public IDictionary<string, RecurringTaskOptions> Recurring { get; } = new Dictionary<string, RecurringTaskOptions>(StringComparer.Ordinal);

    /// <summary>How often every registered process proves it is alive. Default 5 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A process whose last heartbeat is older than this is considered dead: it is pruned and its claims
    /// recovered. At least twice <see cref="HeartbeatInterval"/>. Default 30 s.
    /// </summary>
    public TimeSpan AliveThreshold { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often maintenance looks for processes whose heartbeat expired. Independent of the threshold. Default 5 s.</summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often maintenance checks the cheap, certain signs of death: a process whose PostgreSQL session ended, or
    /// whose pid no longer runs on this host. A process found gone is pruned at once, so a kill -9 or an OOM kill
    /// is recovered within about this long even without a supervisor. Default 1 s.
    /// </summary>
    public TimeSpan LivenessCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Process mode: how long a child process may take to register before its supervisor kills and replaces it
    /// (a child stuck while starting). Default 30 s.
    /// </summary>
    public TimeSpan ProcessStartTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Run maintenance (pruning dead processes, recovering their claims) in this process. Default true.</summary>
    public bool RunMaintenance { get; set; } = true;

    /// <summary>
    /// How long a stopping process lets running jobs finish before cancelling them and releasing their claims. Default
    /// 15 s. The whole stop takes at most <see cref="StopBudget"/>, which Keel makes the host's own stop timeout.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a job whose cancellation token fired (stop, timeout, a lost lease, a prune) may take to return before
    /// Keel stops waiting for it: in process mode its worker process is replaced, in-process its slot is taken back and
    /// the run abandoned. At most a quarter of <see cref="AliveThreshold"/>, so a fenced process is done before its lease
    /// ends. Default 5 s, or a sixth of <see cref="AliveThreshold"/> when that is shorter.
    /// </summary>
    public TimeSpan CancellationGrace
    {
        get => _cancellationGrace ?? Min(TimeSpan.FromSeconds(5), AliveThreshold / 6);
        set => _cancellationGrace = value;
    }

    /// <summary>The default of <see cref="MaxResultBytes"/>: 64 KiB.</summary>
    public const int DefaultMaxResultBytes = 64 * 1024;

    /// <summary>The largest result a job may store (<see cref="JobContext.SetResultAsync{T}"/>), as UTF-8 JSON. Default 64 KiB.</summary>
    public int MaxResultBytes { get; set; } = DefaultMaxResultBytes;

    /// <summary>The most lines of <see cref="JobContext.Logger"/> kept with a job per attempt; later ones are counted, not kept. Default 200.</summary>
    public int MaxJobLogLines { get; set; } = 200;

    /// <summary>The most bytes (UTF-8) of <see cref="JobContext.Logger"/> lines kept with a job per attempt. Default 64 KiB.</summary>
    public int MaxJobLogBytes { get; set; } = 64 * 1024;

    /// <summary>The default of <see cref="MaxCheckpointBytes"/>: 64 KiB.</summary>
    public const int DefaultMaxCheckpointBytes = 64 * 1024;

    /// <summary>
    /// The largest checkpoint a job may save (<see cref="JobContext.SaveCheckpointAsync{T}"/>), as UTF-8 JSON; a larger one
    /// is refused with an error that says so. Default 64 KiB.
    /// </summary>
    public int MaxCheckpointBytes { get; set; } = DefaultMaxCheckpointBytes;

    /// <summary>
    /// How often a worker that holds claims reads whether any of them was asked to stop (<see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>):
    /// one indexed read of at most its threads' claims. On PostgreSQL a NOTIFY wakes it at once, and this is the fallback.
    /// Default 500 ms, so a cancel reaches its run within a second.
    /// </summary>
    public TimeSpan CancellationPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// PostgreSQL session liveness: how long a process's session lock must stay free, seen by at least two probes,
    /// before its claims are recovered. A live process whose connection dropped, or whose server crash-restarted or failed
    /// over, takes its lock again well within it. Default 3 s, or half of <see cref="AliveThreshold"/> when that is shorter.
    /// </summary>
    public TimeSpan SessionGracePeriod
    {
        get => _sessionGracePeriod ?? Min(TimeSpan.FromSeconds(3), AliveThreshold / 2);
        set => _sessionGracePeriod = value;
    }

    /// <summary>
    /// The longest a graceful stop takes: <see cref="ShutdownTimeout"/> for the jobs, <see cref="CancellationGrace"/> for
    /// the cancelled ones, and 8 s for the final writes (mark stopping, outcomes, deregistration) when the database is
    /// slow. Keel raises the host's stop timeout to this plus 2 s; give Kubernetes a
    /// <c>terminationGracePeriodSeconds</c> of at least this plus 5 s (defaults: 28 s; Kubernetes' default is 30 s).
    /// </summary>
    public TimeSpan StopBudget => ShutdownTimeout + CancellationGrace + TimeSpan.FromSeconds(8);

    /// <summary>
    /// The time the platform gives a stopping process before it kills it (Kubernetes' <c>terminationGracePeriodSeconds</c>,
    /// minus any preStop delay), when known: start-up refuses settings whose <see cref="StopBudget"/> does not fit in it
    /// with 2 s to spare. Null (the default) checks nothing.
    /// </summary>
    public TimeSpan? TerminationGracePeriod { get; set; }

    /// <summary>
    /// How long start-up keeps trying to reach a database that is unreachable (a transient error: refused or dropped
    /// connection, server starting or restarting), with backoff and one log line when it fails and one when it
    /// succeeds, before the host fails to start with one line that says so. Zero tries once. Default 60 s. A database
    /// lost after start-up is retried by the running processes, without this bound.
    /// </summary>
    public TimeSpan StartupTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The largest a job's arguments may be, in bytes of JSON (UTF-8). A larger enqueue is refused with an
    /// <see cref="ArgumentException"/> naming the kind, the size and this limit: a job row is read on every claim and
    /// shown by the dashboard, so large data belongs elsewhere (a blob store, a table of its own) with a reference in
    /// the arguments. Default 1 MiB (1,048,576).
    /// </summary>
    public int MaxArgumentsBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// How often the process running maintenance (in-process host or supervisor) reads the queue, claim and process
    /// state the observable gauges report (<c>keel.queue.depth</c>, <c>keel.claim.stale</c>…). It reads only while
    /// something listens to those gauges. Default 15 s; zero turns the gauges off.
    /// </summary>
    public TimeSpan TelemetryRefreshInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Process mode: the port (on <see cref="HealthCheckHost"/>) where the supervisor serves <c>/healthz/live</c> and
    /// <c>/healthz/ready</c> for Kubernetes probes. Null (the default) serves nothing.
    /// </summary>
    public int? HealthCheckPort { get; set; }

    /// <summary>
    /// The address the supervisor's health endpoint binds with <see cref="HealthCheckPort"/>. Default <c>127.0.0.1</c>
    /// (loopback only); <c>*</c> binds every interface, which Kubernetes <c>httpGet</c> probes need (they connect to
    /// the pod's IP).
    /// </summary>
    public string HealthCheckHost { get; set; } = "127.0.0.1";

    /// <summary>
    /// The number of stale claims (owner's heartbeat older than <see cref="AliveThreshold"/>) at which the
    /// <c>keel-stale-claims</c> health check reports degraded. Default 1.
    /// </summary>
    public int StaleClaimsDegradedThreshold { get; set; } = 1;

    /// <summary>How JSON arguments are written and read. Defaults to <see cref="JsonSerializerDefaults.Web"/>.</summary>
    public JsonSerializerOptions JsonSerializerOptions { get; set; } = new(JsonSerializerDefaults.Web);

    private TimeSpan? _cancellationGrace;
    private TimeSpan? _sessionGracePeriod;

    /// <summary>The workers to run: <see cref="Workers"/>, or one default worker when none is configured.</summary>
    public IReadOnlyList<WorkerOptions> EffectiveWorkers => Workers.Count > 0 ? [.. Workers] : [new WorkerOptions()];

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}

/// <summary>One pool of worker slots polling an ordered list of queues.</summary>
public sealed class WorkerOptions
{
    /// <summary>
    /// Queues in the order they are drained: exact names, <c>prefix*</c>, or <c>*</c> for every queue.
    /// An earlier entry is emptied before a later one is looked at, whatever the priorities. Empty means <c>*</c>.
    /// </summary>
    /// <remarks>Empty by default (not <c>["*"]</c>) so that configuration binding replaces rather than appends.</remarks>
    public IList<string> Queues { get; set; } = new List<string>();

    /// <summary>The queue entries in effect: <see cref="Queues"/>, or <c>*</c> when none is listed.</summary>
    public IReadOnlyList<string> EffectiveQueues => Queues.Count > 0 ? [.. Queues] : ["*"];

    /// <summary>How many jobs run at once.</summary>
    public int Threads { get; set; } = 10;

    /// <summary>
    /// The most jobs the worker may claim beyond <see cref="Threads"/>, to start the moment a thread frees instead of one
    /// round trip to the database later. Null (the default): twenty times <see cref="Threads"/>, at most 1,000; 0: never.
    /// The worker claims only as many ahead as keep its threads busy for two of its round trips to the database, so a job
    /// claimed ahead waits about that long for a thread; it claims none while its recent runs are long (over ten of its
    /// round trips, or over 100 ms) or before it has seen <see cref="Threads"/> runs end. A job claimed ahead that waits
    /// half a second for a thread goes back to its queue, and a stopping, fenced or pruned worker gives its waiting jobs
    /// back unstarted. After a crash they are recovered with the running ones (see docs/crash-recovery.md).
    /// </summary>
    public int? ClaimAhead { get; set; }

    /// <summary>The most jobs claimed ahead in effect: <see cref="ClaimAhead"/>, or its default for <see cref="Threads"/>.</summary>
    public int EffectiveClaimAhead => ClaimAhead ?? Math.Clamp(20 * Threads, 0, 1000);

    /// <summary>How often an idle worker looks for jobs when nothing woke it.</summary>
    public TimeSpan PollingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// True (the default): an idle worker offers a free slot, and a job enqueued alone (not in a caller's transaction,
    /// due, without concurrency or uniqueness keys, not in a batch) for one of its queues is inserted already claimed by
    /// it and starts from the notification, without a claim of its own: one durable commit between enqueue and start
    /// instead of two. Only on a store that supports it (PostgreSQL) and while this process listens to its
    /// notifications (not behind a transaction-mode pooler). A handed job is an ordinary claim: fenced, recovered and
    /// released like any other (see docs/architecture.md).
    /// </summary>
    public bool DirectHandOff { get; set; } = true;

    /// <summary>How many worker processes run this pool in process mode (<c>keel start</c>).</summary>
    public int Processes { get; set; } = 1;
}

/// <summary>The dispatcher: moves due scheduled jobs to ready.</summary>
public sealed class DispatcherOptions
{
    /// <summary>Run a dispatcher in this process. Default true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How many jobs one pass moves at most.</summary>
    public int BatchSize { get; set; } = 500;

    /// <summary>How often it looks for due jobs when the last pass found fewer than a batch.</summary>
    public TimeSpan PollingInterval { get; set; } = TimeSpan.FromSeconds(1);
}
