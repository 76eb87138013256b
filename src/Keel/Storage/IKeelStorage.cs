namespace Keel.Storage;

/// <summary>
/// The one seam between Keel and a database. Operations are named after queue operations, noun first,
/// with one parameters record each. Every operation that finalizes a job is fenced by its claim: it
/// changes nothing unless the claim row still exists and belongs to the caller's process.
/// </summary>
/// <remarks>
/// <para><b>Concurrency limits.</b> A job with a <see cref="NewJob.ConcurrencyKey"/> holds a permit of its key's
/// semaphore (<c>keel_semaphores</c>: free permits in <c>value</c>, the limit in <c>limit_value</c>) exactly while it is
/// ready or claimed. It takes one when it becomes ready (insert when due, dispatch of a due scheduled job, retry of a
/// failed job); with none free it becomes blocked (or, with <see cref="NewJob.DiscardOnConflict"/> at insert,
/// discarded). It keeps its permit when released back to ready (graceful stop, operator release, a lost worker retried).
/// It gives the permit back when it leaves ready/claimed any other way — finished, failed for good, scheduled for a
/// retry, discarded — and the next blocked job of the key (by priority, then id) is promoted to ready in that permit.
/// The release and promotion may run in their own transaction right after the finalizing one commits (a crash in
/// between only delays promotion until <see cref="ConcurrencyMaintainAsync"/>; it can never exceed the limit).</para>
/// <para><b>Uniqueness.</b> A job with a <see cref="NewJob.UniqueKey"/> owns its <c>keel_unique_keys</c> row while ready,
/// scheduled, blocked or claimed; the row goes when the job finishes, fails for good or is discarded.</para>
/// </remarks>
public interface IKeelStorage
{
    /// <summary>A short engine name: <c>sqlite</c> or <c>postgresql</c>.</summary>
    string Engine { get; }

    /// <summary>The newest schema version this code ships.</summary>
    int LatestSchemaVersion { get; }

    /// <summary>True when retrying the failed operation may succeed (busy database, dropped connection).</summary>
    /// <param name="exception">The exception thrown by a storage operation.</param>
    bool IsTransient(Exception exception);

    /// <summary>
    /// Lines worth a warning when a host starts on this store, e.g. that a connection pooler forces liveness by lease
    /// alone. Empty by default.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<string>> StartupWarningsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>
    /// Called when the database has no Keel schema and migrating is off: a message when that is because the database
    /// itself does not exist (SQLite: no file at the path), saying what to do; null when it exists. Null by default.
    /// </summary>
    /// <returns>The message, or null.</returns>
    string? DescribeMissingDatabase() => null;

    /// <summary>Applies every migration the database lacks. Safe to run twice and from several processes at once.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="KeelSchemaException">The database is at a newer version than this code.</exception>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>The schema version the database is at; 0 when Keel's tables are absent.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> SchemaVersionAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Inserts jobs — in one round trip when none uses a concurrency or uniqueness key: ready when due (blocked when
    /// its concurrency limit is full, or discarded if so chosen), scheduled otherwise. Returns ids in input order;
    /// a job whose uniqueness key is taken (by a live job, or by an earlier job of the same call) is not inserted and
    /// its position holds the existing job's id.
    /// </summary>
    /// <param name="parameters">The jobs, and optionally the caller's connection and transaction.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<long>> JobsInsertAsync(JobsInsertParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Claims up to <see cref="JobsClaimParams.Limit"/> ready jobs of one queue selector for a process, in
    /// one transaction: lock ready rows (skipping locked ones), insert claims, delete the ready rows.
    /// </summary>
    /// <param name="parameters">Who claims, from where, how many.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="ProcessGoneException">The claiming process's row no longer exists.</exception>
    Task<IReadOnlyList<ClaimedJob>> JobsClaimAsync(JobsClaimParams parameters, CancellationToken cancellationToken);

    /// <summary>Marks claimed jobs finished (or deletes them). Returns the claim ids that were still held.</summary>
    /// <param name="parameters">The claims to complete.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<long>> JobsCompleteAsync(JobsCompleteParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Completes held claims, then claims again for the slots they free: what a busy worker does after each batch.
    /// The completions are written first, so the process never holds more claims than the caller's limit allows.
    /// An engine may do both in one transaction (both built-in engines do, PostgreSQL in one round trip: half the
    /// commits per job); the default runs <see cref="JobsCompleteAsync"/> and then <see cref="JobsClaimAsync"/>.
    /// </summary>
    /// <param name="complete">The claims to complete.</param>
    /// <param name="claim">The claim to make after them (same process).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The claim ids that were still held, and the jobs claimed.</returns>
    /// <exception cref="ProcessGoneException">The process's row no longer exists (nothing was written).</exception>
    async Task<CompleteAndClaimResult> JobsCompleteAndClaimAsync(JobsCompleteParams complete, JobsClaimParams claim, CancellationToken cancellationToken)
    {
        var completed = await JobsCompleteAsync(complete, cancellationToken).ConfigureAwait(false);
        var claimed = await JobsClaimAsync(claim, cancellationToken).ConfigureAwait(false);
        return new CompleteAndClaimResult(completed, claimed);
    }

    /// <summary>
    /// Records a failed attempt under its claim: schedules a retry when <see cref="JobFailParams.RetryAt"/> is
    /// set, otherwise moves the job to failed. Returns false when the claim was no longer held.
    /// </summary>
    /// <param name="parameters">The claim and the failure.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobFailAsync(JobFailParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Puts claims back to ready without counting an attempt (a suspect stays one), recording
    /// <see cref="ClaimsReleaseParams.Reason"/> in each job's run history. Returns how many were released.
    /// </summary>
    /// <param name="parameters">The process and, optionally, which of its claims.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> ClaimsReleaseAsync(ClaimsReleaseParams parameters, CancellationToken cancellationToken);

    /// <summary>Reads one job with its state and error history; null when there is no such job.</summary>
    /// <param name="jobId">The job id.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<JobInfo?> JobGetAsync(long jobId, CancellationToken cancellationToken);

    /// <summary>Moves due scheduled jobs to ready, oldest first. Returns how many moved.</summary>
    /// <param name="parameters">Batch size and time.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> ScheduledDispatchAsync(ScheduledDispatchParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Makes the static recurring tasks match <see cref="RecurringTasksSyncParams.Tasks"/> in one transaction: upserts
    /// each (as static) and deletes every other static task. Dynamic tasks are left alone unless a static task takes
    /// their key. Returns how many static tasks were deleted.
    /// </summary>
    /// <param name="parameters">The static tasks.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> RecurringTasksSyncAsync(RecurringTasksSyncParams parameters, CancellationToken cancellationToken);

    /// <summary>Adds or replaces a dynamic recurring task. Returns false (and changes nothing) when a static task has the key.</summary>
    /// <param name="parameters">The task.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> RecurringTaskUpsertAsync(RecurringTaskUpsertParams parameters, CancellationToken cancellationToken);

    /// <summary>Deletes a dynamic recurring task (its execution history stays). Returns false when there is no such dynamic task.</summary>
    /// <param name="parameters">The key.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> RecurringTaskDeleteAsync(RecurringTaskDeleteParams parameters, CancellationToken cancellationToken);

    /// <summary>Lists recurring tasks by key, each with its newest recorded run.</summary>
    /// <param name="parameters">The filter.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<RecurringTaskInfo>> RecurringTasksListAsync(RecurringTasksListParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Enqueues the job of one run of a recurring task at most once, in one transaction: records the unique
    /// (task key, run time) row, and only if it was not already recorded inserts the job (ready or scheduled, as
    /// <see cref="JobsInsertAsync"/>) and links it. Returns the new job id, or null when another scheduler already
    /// enqueued that run. The record has no foreign key to the job, so deleting the job later does not re-open the run.
    /// </summary>
    /// <param name="parameters">The task, the run time and the job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<long?> RecurringEnqueueAsync(RecurringEnqueueParams parameters, CancellationToken cancellationToken);

    /// <summary>Registers a process row and returns its id.</summary>
    /// <param name="parameters">What the process is.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<long> ProcessRegisterAsync(ProcessRegisterParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Refreshes a process's heartbeat and renews its lease to <see cref="ProcessHeartbeatParams.LeaseDuration"/> from
    /// the database's now; optionally returns the claims it holds. Not alive when its row is gone (it was pruned).
    /// </summary>
    /// <param name="parameters">The process and time.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<ProcessHeartbeatResult> ProcessHeartbeatAsync(ProcessHeartbeatParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Records that a process began a graceful stop: whatever it leaves behind is later recovered without charging its
    /// jobs. Returns false when its row is gone.
    /// </summary>
    /// <param name="parameters">The process.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> ProcessStoppingAsync(ProcessStoppingParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Marks claims whose jobs did not stop when cancelled, just before their process exits to be replaced: its
    /// recovery charges those jobs alone. Returns how many were marked.
    /// </summary>
    /// <param name="parameters">The process and claims.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> ClaimsMarkUnresponsiveAsync(ClaimsMarkUnresponsiveParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// True while the process still holds the claim and its lease has not expired: what a job checks before an
    /// external side effect it cannot fence otherwise.
    /// </summary>
    /// <param name="parameters">The process and claim.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> ClaimHeldAsync(ClaimHeldParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Asks the run of a claimed job to stop: stores <see cref="ClaimCancelRequestParams.Reason"/> on its claim (the
    /// request belongs to that run and goes with it), unless one is stored already. PostgreSQL also notifies the process.
    /// Returns null when the job is not claimed.
    /// </summary>
    /// <param name="parameters">The job and the reason.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<ClaimCancelRequest?> ClaimCancelRequestAsync(ClaimCancelRequestParams parameters, CancellationToken cancellationToken);

    /// <summary>The claims of a process whose runs were asked to stop: what its workers poll while they hold claims.</summary>
    /// <param name="parameters">The process.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<ClaimCancelRequested>> ClaimsCancelRequestedAsync(ClaimsCancelRequestedParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Ends a cancelled run under its claim, in one transaction: deletes the claim only while the process holds it (the
    /// fence of every outcome), discards the job (attempt counted), records the run, and gives back the job's permit and
    /// uniqueness key. Returns false when the claim was no longer held (nothing written).
    /// </summary>
    /// <param name="parameters">The claim and the history row.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobCancelFinishAsync(JobCancelFinishParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Stores a running job's checkpoint with the job, only while the process holds the claim (the claim row is locked
    /// for the write, so a concurrent prune or release waits for it). Returns false when the claim is no longer held
    /// (nothing written). The next claim of the job returns it (<see cref="ClaimedJob.Checkpoint"/>); finishing the job,
    /// failing it for good or cancelling it clears it.
    /// </summary>
    /// <param name="parameters">The claim and the state.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobCheckpointSaveAsync(JobCheckpointSaveParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Records how far a run got on its claim, only while the process holds it (an update of the claim row fenced by
    /// its id and process). Returns false when the claim is no longer held. Read back by <see cref="ClaimsListAsync"/>
    /// and <see cref="JobGetAsync"/>; it goes with the claim.
    /// </summary>
    /// <param name="parameters">The claim and the progress.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobProgressReportAsync(JobProgressParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Appends lines a run logged to its job, only while the process holds the claim (locked for the write). Returns
    /// false when the claim is no longer held (nothing written). <see cref="JobGetAsync"/> returns them; they go with the job.
    /// </summary>
    /// <param name="parameters">The claim and the lines.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobLogsAppendAsync(JobLogsAppendParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Stores a run's result with its job, only while the process holds the claim (locked for the write). Returns false
    /// when the claim is no longer held. <see cref="JobGetAsync"/> returns it (<see cref="JobInfo.Result"/>).
    /// </summary>
    /// <param name="parameters">The claim and the result.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobResultSaveAsync(JobResultSaveParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Adds a row to a job's run history without changing the job: a late result that was rejected, a run that was
    /// abandoned. Nothing is written when the job no longer exists.
    /// </summary>
    /// <param name="parameters">The run.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task RunRecordAsync(RunRecordParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes a process row after putting whatever it still has claimed back to ready, in one transaction.
    /// Returns how many claims were released.
    /// </summary>
    /// <param name="parameters">The process.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> ProcessDeregisterAsync(ProcessDeregisterParams parameters, CancellationToken cancellationToken);
    /// <summary>Lists registered processes (all, or only those whose heartbeat is older than a threshold).</summary>
    /// <param name="parameters">The filter.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<ProcessInfo>> ProcessesListAsync(ProcessesListParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Prunes processes (the rows of one OS process) and recovers their claims, in one transaction: locks the rows
    /// (skipping any another pruner or a heartbeat holds), re-checks <see cref="ProcessRecoverParams.Condition"/>,
    /// charges the jobs as <see cref="ProcessRecoverParams.Charge"/> says — a charged job follows its worker-lost policy
    /// (back to ready as a counted attempt and loss, or failed with a <c>WorkerLostException</c> naming the cause); an
    /// uncharged one goes back to ready as it was, a suspect when it shared a dying process — records each run in the
    /// job's history, and deletes the rows. Returns null when no row was pruned (gone, locked, or no longer expired).
    /// </summary>
    /// <param name="parameters">The process and the cause.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<RecoveryResult?> ProcessRecoverAsync(ProcessRecoverParams parameters, CancellationToken cancellationToken);

    /// <summary>Lists claims with their owners, oldest first.</summary>
    /// <param name="parameters">The filter.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<ClaimInfo>> ClaimsListAsync(ClaimsListParams parameters, CancellationToken cancellationToken);

    /// <summary>Releases or fails chosen claims whatever their owner (the operator's escape hatch).</summary>
    /// <param name="parameters">The claims and the action.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<RecoveryResult> ClaimsRecoverAsync(ClaimsRecoverParams parameters, CancellationToken cancellationToken);
    /// <summary>
    /// Of <paramref name="parameters"/>' processes, those whose database session has ended although their row
    /// remains: on PostgreSQL each registered process holds a session-level advisory lock on a dedicated
    /// connection, so a lock that can be taken means its session is gone. Engines without sessions return none.
    /// </summary>
    /// <param name="parameters">The candidates.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<long>> ProcessesSessionEndedAsync(ProcessesSessionParams parameters, CancellationToken cancellationToken);
    /// <summary>
    /// Retries failed jobs (given ids, or those matching a filter), at most <see cref="JobsSelectionParams.BatchSize"/>
    /// per call: the failed execution goes, attempts and worker losses start over (the error history stays), and the
    /// job becomes ready — taking a concurrency permit, or blocked when none is free. Returns how many were retried.
    /// </summary>
    /// <param name="parameters">Which jobs.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> JobsRetryAsync(JobsSelectionParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Discards jobs in the allowed states (ready, scheduled, blocked, failed — never claimed), at most a batch per
    /// call: their execution row goes, <c>discarded_at</c> is set, a held concurrency permit is released and the next
    /// blocked job promoted, the uniqueness key freed. Returns how many were discarded.
    /// </summary>
    /// <param name="parameters">Which jobs, and which states may be discarded.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> JobsDiscardAsync(JobsSelectionParams parameters, CancellationToken cancellationToken);

    /// <summary>Makes a scheduled job due now (subject to its limit) or a blocked job ready now (bypassing it). False when it is neither.</summary>
    /// <param name="parameters">The job.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<bool> JobRunNowAsync(JobRunNowParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Every known queue — one with jobs in any state (finished and discarded ones too, until retention deletes them) or
    /// a pause — with its counts of live jobs, ordered by name: an idle queue is listed with zeros, so it can be paused.
    /// </summary>
    /// <param name="now">The time for ages; null means the database clock.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<QueueInfo>> QueuesListAsync(DateTimeOffset? now, CancellationToken cancellationToken);

    /// <summary>Pauses a queue (workers skip it; its jobs stay) or resumes it. Idempotent.</summary>
    /// <param name="parameters">The queue and what to do.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task QueuePauseAsync(QueuePauseParams parameters, CancellationToken cancellationToken);

    /// <summary>Deletes finished and discarded jobs older than a cutoff, a batch per call. Returns how many were deleted.</summary>
    /// <param name="parameters">The cutoff and batch size.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> JobsClearFinishedAsync(JobsClearFinishedParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Repairs concurrency permits: for keys whose semaphore expired or is missing while jobs are blocked on them, the
    /// free permits are recomputed from the jobs actually ready or claimed (so a lost release can never let the limit
    /// be exceeded), and blocked jobs are promoted into the free permits. Returns how many jobs were promoted.
    /// </summary>
    /// <param name="parameters">Batch size and time.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<int> ConcurrencyMaintainAsync(ConcurrencyMaintainParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Cleans the hot execution tables when they carry many dead rows: every claim deletes a ready row and every
    /// completion a claimed one, and until they are vacuumed the claim's index walk steps over them (PostgreSQL:
    /// 200,000 jobs drained at a third of the speed of 20,000 before this). Returns the tables cleaned. An engine
    /// without dead rows (SQLite) does nothing.
    /// </summary>
    /// <param name="deadRowsThreshold">Clean a table once it has at least this many dead rows.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<string>> HotTablesVacuumAsync(long deadRowsThreshold, CancellationToken cancellationToken)
        => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>Lists jobs newest first (by id), filtered by state, queue, kind, error and time, a page at a time.</summary>
    /// <param name="parameters">The filter and page.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<JobSummary>> JobsListAsync(JobsListParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Counts jobs per state, each count stopping at <see cref="JobsCountParams.Limit"/> + 1 so that a huge table costs
    /// no more than a capped index walk: a count above the limit means "more than the limit".
    /// </summary>
    /// <param name="parameters">The cap.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<JobCounts> JobsCountAsync(JobsCountParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Jobs finished, attempts failed and the mean queue latency (run start minus due time) per time bucket, for
    /// charts; read through the finished-time and error-time indexes, so its cost follows the window's volume.
    /// </summary>
    /// <param name="parameters">The window and bucket size.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<JobActivityBucket>> JobsActivityAsync(JobsActivityParams parameters, CancellationToken cancellationToken);

    /// <summary>
    /// Starts a batch in one transaction: the batch row with its callbacks, and its jobs (as <see cref="JobsInsertAsync"/>,
    /// each carrying the batch id). An empty batch completes at once (its callbacks are enqueued).
    /// </summary>
    /// <param name="parameters">The jobs, callbacks, parent batch, and optionally the caller's connection and transaction.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The batch id and its jobs' ids.</returns>
    /// <exception cref="KeelBatchClosedException">The parent batch has completed or does not exist.</exception>
    Task<BatchStartResult> BatchStartAsync(BatchStartParams parameters, CancellationToken cancellationToken)
        => throw new NotSupportedException($"the {Engine} store does not support batches");

    /// <summary>Reads a batch with its counts and callbacks; null when there is no such batch.</summary>
    /// <param name="batchId">The batch.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<BatchInfo?> BatchGetAsync(long batchId, CancellationToken cancellationToken)
        => throw new NotSupportedException($"the {Engine} store does not support batches");

    /// <summary>Lists batches newest first, a page at a time (without their callbacks).</summary>
    /// <param name="parameters">The filter and page.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<BatchInfo>> BatchesListAsync(BatchesListParams parameters, CancellationToken cancellationToken)
        => throw new NotSupportedException($"the {Engine} store does not support batches");

    /// <summary>Lists the jobs of a batch newest first, a page at a time.</summary>
    /// <param name="parameters">The batch and page.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    Task<IReadOnlyList<JobSummary>> BatchJobsListAsync(BatchJobsListParams parameters, CancellationToken cancellationToken)
        => throw new NotSupportedException($"the {Engine} store does not support batches");
}
