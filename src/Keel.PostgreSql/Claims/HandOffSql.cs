namespace Keel.PostgreSql;

/// <summary>
/// The SQL of direct hand-off on PostgreSQL (<see cref="Keel.Storage.IJobHandOffs"/>): an idle worker's offer of one
/// slot, the one-job enqueue that may take it, and the worker's reading or withdrawing of its offer.
/// </summary>
internal static class HandOffSql
{
    /// <summary>The prefix of a hand-off notification's payload on <see cref="ClaimsSql.NotifyChannel"/>; a JSON object follows.</summary>
    public const string PayloadPrefix = "keel:hand-off:";

    /// <summary>Opens a process's offer, replacing its earlier one (the worker resolved it first). Returns the offer id.</summary>
    public const string Offer = """
        WITH replaced AS (
            DELETE FROM keel_hand_off_offers WHERE process_id = @process_id
        )
        INSERT INTO keel_hand_off_offers (process_id, queues, created_at)
        VALUES (@process_id, @queues, coalesce(@now, now()))
        RETURNING id
        """;

    /// <summary>
    /// Inserts one job, handing it to an idle worker's offer when one matches (see <c>keel_job_insert_one</c> in
    /// <c>Migrations/0009_hand_offs.sql</c>, whose notification payload starts with <see cref="PayloadPrefix"/>). Ready
    /// jobs of the queue are not looked for: a worker offers only when its queues are empty and withdraws its offer once
    /// a claim of its finds them full, so a job handed over passes jobs made ready at most moments before. Returns the
    /// job id.
    /// </summary>
    public const string JobInsert = "SELECT keel_job_insert_one(@queue, @kind, @args, @priority, @scheduled_at, @max_attempts, @max_worker_losses, @trace_parent, @now)";

    /// <summary>The claimed job of a taken offer, read as a claim reads it; no row once the claim is gone.</summary>
    public const string TakenJob = """
        SELECT c.id, c.job_id, j.kind, j.queue, j.args::text, j.priority, c.attempt, j.max_attempts,
               j.worker_losses, j.created_at, c.claimed_at, j.created_at, j.trace_parent, j.suspect, j.batch_id, j.checkpoint
        FROM keel_claimed_executions c
        JOIN keel_jobs j ON j.id = c.job_id
        WHERE c.id = @claim_id AND c.process_id = @process_id
        """;

    /// <summary>An offer as it stands: no row when it is gone; its claim id (null while open).</summary>
    public const string Read = "SELECT claim_id FROM keel_hand_off_offers WHERE id = @offer_id AND process_id = @process_id";

    /// <summary>
    /// Withdraws an offer: no row when it was gone already; else its claim id (null when no enqueue took it). An enqueue
    /// taking it at that moment finishes first (the delete waits for its row lock), so its claim id is returned.
    /// </summary>
    public const string Withdraw = "DELETE FROM keel_hand_off_offers WHERE id = @offer_id AND process_id = @process_id RETURNING claim_id";

    /// <summary>Withdraws every offer of a process (one it may have made unseen, when a reply was lost).</summary>
    public const string WithdrawAll = "DELETE FROM keel_hand_off_offers WHERE process_id = @process_id";
}
