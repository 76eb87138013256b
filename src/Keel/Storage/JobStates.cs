namespace Keel.Storage;

/// <summary>
/// Where a job in one <see cref="JobState"/> is recorded: a row of an execution table (<c>keel_ready_executions</c>, …),
/// or, once it has left them for good, a column of <c>keel_jobs</c>. One entry of <see cref="JobStates.All"/>.
/// </summary>
public sealed class JobStateHome
{
    internal JobStateHome(
        JobState state,
        string key,
        string? table,
        string? alias,
        string condition,
        bool holdsPermit = false,
        bool discardable = false,
        bool carriesError = false,
        bool carriesQueue = false,
        string? dueColumn = null,
        string? processColumn = null)
    {
        State = state;
        Key = key;
        Table = table;
        Alias = alias;
        Condition = condition;
        HoldsPermit = holdsPermit;
        Discardable = discardable;
        CarriesError = carriesError;
        CarriesQueue = carriesQueue;
        DueColumn = dueColumn;
        ProcessColumn = processColumn;
    }

    /// <summary>The state.</summary>
    public JobState State { get; }

    /// <summary>A short lower-case name for SQL identifiers and parameters: <c>ready</c>, <c>scheduled</c>, ….</summary>
    public string Key { get; }

    /// <summary>The execution table holding one row per job in this state; null when a column of <c>keel_jobs</c> says it.</summary>
    public string? Table { get; }

    /// <summary>
    /// The alias of <see cref="Table"/> in the SQL built from this map (<c>r</c>, <c>s</c>, <c>b</c>, <c>c</c>, <c>f</c>, <c>a</c>),
    /// the one <see cref="JobStates.Joins"/> gives it; null for a column state.
    /// </summary>
    public string? Alias { get; }

    /// <summary>
    /// SQL that is true when the job aliased <c>j</c> is in this state, on its own: <c>EXISTS</c> on the execution
    /// table, or a test of <c>j</c>'s columns.
    /// </summary>
    public string Condition { get; }

    /// <summary>A job with a concurrency key holds a permit of its key's semaphore while in this state (ready, claimed).</summary>
    public bool HoldsPermit { get; }

    /// <summary>An operator may discard a job in this state (never a claimed, finished or discarded one).</summary>
    public bool Discardable { get; }

    /// <summary>
    /// The execution row carries the job's last error: <c>exception_type</c>, <c>message</c> and the failure time in
    /// <c>created_at</c>. The failure filters (<see cref="JobFilter.ExceptionType"/>, …) match jobs in this state only.
    /// </summary>
    public bool CarriesError { get; }

    /// <summary>The execution row carries the job's queue, so a queue filter reads it there rather than from the job.</summary>
    internal bool CarriesQueue { get; }

    /// <summary>The execution row's column holding the time the job is due, when it has one (scheduled).</summary>
    internal string? DueColumn { get; }

    /// <summary>The execution row's column naming the process that runs the job, when it has one (claimed).</summary>
    internal string? ProcessColumn { get; }

    /// <summary>True over <see cref="JobStates.Joins"/>: the joined row of <see cref="Table"/> exists, or <see cref="Condition"/>.</summary>
    internal string JoinedCondition => Alias is null ? Condition : $"{Alias}.job_id IS NOT NULL";

    /// <inheritdoc />
    public override string ToString() => Table is null ? $"{State}: {Condition}" : $"{State}: {Table}";
}

/// <summary>
/// The one map of job states to where they are recorded, and the state SQL every engine builds from it. A job is in
/// exactly one state: it has one row in one execution table (Solid Queue's design), or none and a
/// <c>finished_at</c> or <c>discarded_at</c>. Adding a state is an entry here, plus, in each engine, its table (a
/// migration) and the statements that move jobs in and out of it.
/// </summary>
/// <remarks>
/// The SQL here is plain enough for every engine Keel ships: named <c>@parameters</c>, <c>LIMIT</c>, <c>coalesce</c>;
/// the engine binds the parameters in its own types (SQLite: times as Unix microseconds, PostgreSQL: timestamptz).
/// Every statement is built once, when this class is first used.
/// </remarks>
public static class JobStates
{
    /// <summary>For a state without an error: the failure filters match nothing unless they are unset.</summary>
    private const string NoFailureFilter = "@exception_type IS NULL AND @failed_after IS NULL AND @failed_before IS NULL";

    private static readonly JobStateHome[] Homes =
    [
        // The columns of keel_jobs come first: a state decided there costs no probe of an execution table.
        new(JobState.Finished, "finished", null, null, "j.finished_at IS NOT NULL"),
        new(JobState.Discarded, "discarded", null, null, "j.discarded_at IS NOT NULL AND j.finished_at IS NULL"),
        Execution(JobState.Failed, "failed", "keel_failed_executions", "f", discardable: true, carriesError: true, carriesQueue: true),
        Execution(JobState.Claimed, "claimed", "keel_claimed_executions", "c", holdsPermit: true, processColumn: "process_id"),
        Execution(JobState.Ready, "ready", "keel_ready_executions", "r", holdsPermit: true, discardable: true, carriesQueue: true),
        Execution(JobState.Scheduled, "scheduled", "keel_scheduled_executions", "s", discardable: true, carriesQueue: true, dueColumn: "scheduled_at"),
        Execution(JobState.Blocked, "blocked", "keel_blocked_executions", "b", discardable: true, carriesQueue: true),
        Execution(JobState.Awaiting, "awaiting", "keel_awaiting_executions", "a", discardable: true, carriesQueue: true),
    ];

    private static readonly Dictionary<JobState, JobStateHome> ByState = Homes.ToDictionary(h => h.State);

    // The statements, built in this order (each from the ones above it).
    private static readonly string JoinsText = string.Join(
        '\n',
        Homes.Where(h => h.Table is not null).Select(h => $"LEFT JOIN {h.Table} {h.Alias} ON {h.Alias}.job_id = j.id"));

    private static readonly string StateOfText =
        "CASE " + string.Join("\n     ", Homes.Select(h => $"WHEN {h.JoinedCondition} THEN '{h.State}'")) + "\nEND";

    private static readonly Dictionary<JobState, string> StateListSelects = Homes.ToDictionary(h => h.State, StateListSelect);

    private static readonly string AnyStateListSelect = BuildAnyStateListSelect();

    /// <summary>Every state, in the order a job's state is decided: the columns of <c>keel_jobs</c> first, then the execution tables.</summary>
    public static IReadOnlyList<JobStateHome> All => Homes;

    /// <summary>The states an operator may discard a job from, with their execution tables: failed, ready, scheduled, blocked, awaiting.</summary>
    public static IReadOnlyList<JobStateHome> Discardable { get; } = [.. Homes.Where(h => h.Discardable)];

    /// <summary>
    /// <c>LEFT JOIN</c>s of every execution table to the job aliased <c>j</c>, each under its <see cref="JobStateHome.Alias"/>
    /// (<c>f</c>, <c>c</c>, <c>r</c>, <c>s</c>, <c>b</c>, <c>a</c>): what <see cref="StateOf"/> reads, and whatever else a read of
    /// whole jobs wants from their execution rows (a claim's process, a schedule's time, a failure's error). Every join
    /// is on the execution table's key: one index probe per job each.
    /// </summary>
    public static string Joins => JoinsText;

    /// <summary>
    /// "Which state is job <c>j</c>": its <see cref="JobState"/> name (<c>'Ready'</c>, …) over <see cref="Joins"/>, or
    /// NULL when nothing records one (a job without an execution row is a bug, which readers report).
    /// </summary>
    public static string StateOf => StateOfText;

    /// <summary>
    /// SQL that is true when the job aliased <c>j</c> holds a permit of its concurrency key: it is in a state that
    /// <see cref="JobStateHome.HoldsPermit"/> (ready or claimed). What a recount of a semaphore counts.
    /// </summary>
    public static string HoldsPermitCondition { get; } =
        "(" + string.Join("\n     OR ", Homes.Where(h => h.HoldsPermit).Select(h => h.Condition)) + ")";

    /// <summary>
    /// One row with the number of jobs in each state, as columns in the order of <see cref="All"/>, each count stopping
    /// at <c>@limit</c> so that it costs at most that many rows of an index walk (an execution table's key, the partial
    /// finished and discarded indexes), whatever the table size.
    /// </summary>
    public static string CountSelect { get; } =
        "SELECT " + string.Join(",\n       ", Homes.Select(h => h.Table is null
            ? $"(SELECT count(*) FROM (SELECT 1 FROM keel_jobs j WHERE {h.Condition} LIMIT @limit) x)"
            : $"(SELECT count(*) FROM (SELECT 1 FROM {h.Table} LIMIT @limit) x)"));

    /// <summary>
    /// A page of one batch's jobs, newest first, in the columns of <see cref="ListSelect"/>: a walk of the
    /// <c>(batch_id, id)</c> index. Parameters: <c>@batch_id</c>, <c>@before_key</c>, <c>@limit</c>.
    /// </summary>
    public static string BatchJobsSelect { get; } = BuildBatchJobsSelect();

    /// <summary>The home of a state.</summary>
    /// <param name="state">The state.</param>
    /// <returns>Its entry of <see cref="All"/>.</returns>
    public static JobStateHome Of(JobState state) => ByState[state];

    /// <summary>
    /// A page of jobs, newest first (by id), as <see cref="IKeelStorage.JobsListAsync"/> returns them: with a state,
    /// a backwards walk of that state's own table (or, for finished and discarded jobs, of <c>keel_jobs</c>), so a page
    /// costs a short index walk at any table size; without one, a walk of <c>keel_jobs</c> with each job's state read
    /// through <see cref="Joins"/>.
    /// </summary>
    /// <remarks>
    /// Columns: id, kind, queue, state name, priority, attempts, created_at, due time, finished or discarded time,
    /// exception type, message, claiming process, concurrency key. Parameters: <c>@before_key</c> (the page's exclusive
    /// upper bound on ids, the largest id for the first page: a plain bound, because "<c>@before IS NULL OR id &lt;
    /// @before</c>" keeps SQLite from seeking, and a page in the middle of a million finished jobs would scan half the
    /// table), <c>@limit</c>, and the filters <c>@queue</c>, <c>@kind</c>, <c>@exception_type</c>, <c>@failed_after</c>,
    /// <c>@failed_before</c>, <c>@created_after</c>, <c>@created_before</c> (null: no filter). The failure filters match
    /// failed jobs only.
    /// </remarks>
    /// <param name="state">Only jobs in this state; null for every state.</param>
    /// <returns>The statement.</returns>
    public static string ListSelect(JobState? state) => state is { } s ? StateListSelects[s] : AnyStateListSelect;

    private static JobStateHome Execution(
        JobState state,
        string key,
        string table,
        string alias,
        bool holdsPermit = false,
        bool discardable = false,
        bool carriesError = false,
        bool carriesQueue = false,
        string? dueColumn = null,
        string? processColumn = null)
        => new(state, key, table, alias, $"EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.job_id = j.id)", holdsPermit, discardable, carriesError, carriesQueue, dueColumn, processColumn);

    /// <summary>One state's list: its own table walked backwards by job id, the job joined by key.</summary>
    private static string StateListSelect(JobStateHome home)
    {
        // The bound is repeated on the jobs side so that a merge join walks the jobs key from the page, not from the
        // newest job.
        var (from, key) = home.Table is null
            ? ($"FROM keel_jobs j\nWHERE {home.Condition} AND j.id < @before_key", "j.id")
            : ($"FROM {home.Table} e JOIN keel_jobs j ON j.id = e.job_id\nWHERE e.job_id < @before_key AND j.id < @before_key", "e.job_id");
        return $"""
            SELECT j.id, j.kind, j.queue, '{home.State}', j.priority, j.attempts, j.created_at,
                   {(home.DueColumn is { } due ? "e." + due : "j.scheduled_at")}, coalesce(j.finished_at, j.discarded_at),
                   {(home.CarriesError ? "e.exception_type" : "NULL")}, {(home.CarriesError ? "e.message" : "NULL")},
                   {(home.ProcessColumn is { } process ? "e." + process : "NULL")}, j.concurrency_key
            {from}
              AND (@queue IS NULL OR {(home.CarriesQueue ? "e" : "j")}.queue = @queue)
              AND (@kind IS NULL OR j.kind = @kind)
              AND {(home.CarriesError ? FailureFilter("e") : NoFailureFilter)}
              AND (@created_after IS NULL OR j.created_at >= @created_after)
              AND (@created_before IS NULL OR j.created_at < @created_before)
            ORDER BY {key} DESC
            LIMIT @limit
            """;
    }

    /// <summary>The list of every state: <c>keel_jobs</c> walked backwards by id, each job's execution row joined.</summary>
    private static string BuildAnyStateListSelect() => JoinedStatesSelect(
        error => $"""
            j.id < @before_key
              AND (@queue IS NULL OR j.queue = @queue)
              AND (@kind IS NULL OR j.kind = @kind)
              AND {FailureFilter(error)}
              AND (@created_after IS NULL OR j.created_at >= @created_after)
              AND (@created_before IS NULL OR j.created_at < @created_before)
            """);

    private static string BuildBatchJobsSelect() => JoinedStatesSelect(_ => "j.batch_id = @batch_id AND j.id < @before_key");

    /// <summary>
    /// A page of <c>keel_jobs</c> rows walked backwards by id, each with its state and its execution row's columns
    /// joined; <paramref name="where"/> gets the alias of the row that carries the error and returns the filter.
    /// </summary>
    private static string JoinedStatesSelect(Func<string, string> where)
    {
        var due = Homes.Single(h => h.DueColumn is not null);
        var error = Homes.Single(h => h.CarriesError);
        var process = Homes.Single(h => h.ProcessColumn is not null);
        return $"""
            SELECT j.id, j.kind, j.queue, {StateOfText}, j.priority, j.attempts, j.created_at,
                   coalesce({due.Alias}.{due.DueColumn}, j.scheduled_at), coalesce(j.finished_at, j.discarded_at),
                   {error.Alias}.exception_type, {error.Alias}.message,
                   {process.Alias}.{process.ProcessColumn}, j.concurrency_key
            FROM keel_jobs j
            {JoinsText}
            WHERE {where(error.Alias!)}
            ORDER BY j.id DESC
            LIMIT @limit
            """;
    }

    /// <summary>The failure filters, on a row aliased <paramref name="alias"/> that carries the error.</summary>
    private static string FailureFilter(string alias)
        => $"(@exception_type IS NULL OR {alias}.exception_type = @exception_type)\n  AND (@failed_after IS NULL OR {alias}.created_at >= @failed_after)\n  AND (@failed_before IS NULL OR {alias}.created_at < @failed_before)";
}
