using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Claims, the hot path: claim ready jobs, complete them (alone or in one round trip with the next claim), fail or retry them, release them.</summary>
public sealed partial class PostgreSqlStorage
{
    /// <inheritdoc />
    public async Task<IReadOnlyList<ClaimedJob>> JobsClaimAsync(JobsClaimParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Queue);
        if (parameters.Limit <= 0)
        {
            return [];
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = HotPathBatch(connection);
        var command = new NpgsqlBatchCommand(ClaimSql(parameters));
        AddClaimParameters(command.Parameters, parameters);
        batch.BatchCommands.Add(command);
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await SkipHotPathSettingAsync(reader, cancellationToken).ConfigureAwait(false);
            return await ReadClaimedAsync(reader, parameters.Limit, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (IsProcessGone(e))
        {
            throw new ProcessGoneException($"process {parameters.ProcessId} is no longer registered; it was pruned", e);
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<long>> JobsCompleteAsync(JobsCompleteParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Claims);
        if (parameters.Claims.Count == 0)
        {
            return [];
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = HotPathBatch(connection);
        var command = new NpgsqlBatchCommand(CompleteSql(parameters));
        AddCompleteParameters(command.Parameters, parameters);
        batch.BatchCommands.Add(command);
        List<PermitRelease> releases = [];
        List<long> done;
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await SkipHotPathSettingAsync(reader, cancellationToken).ConfigureAwait(false);
            done = await ReadCompletedAsync(reader, parameters.Claims.Count, releases, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (IsWorkflowNeeded(e))
        {
            return await CompleteWithWorkflowAsync(parameters, cancellationToken).ConfigureAwait(false);
        }

        // The statement gave the finished jobs' permits back; once it committed, promote blocked jobs into them
        // (a failed promotion must not undo a finished job).
        if (releases.Count > 0)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return done;
    }

    /// <summary>
    /// Both statements go in one batch: one round trip, and one implicit transaction (Npgsql sends a single Sync),
    /// so a busy worker pays one commit per batch of jobs instead of two.
    /// </summary>
    /// <inheritdoc />
    public async Task<CompleteAndClaimResult> JobsCompleteAndClaimAsync(JobsCompleteParams complete, JobsClaimParams claim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(complete);
        ArgumentNullException.ThrowIfNull(complete.Claims);
        ArgumentNullException.ThrowIfNull(claim);
        ArgumentNullException.ThrowIfNull(claim.Queue);
        if (complete.ProcessId != claim.ProcessId)
        {
            throw new ArgumentException("the completions and the claim must be of the same process", nameof(claim));
        }

        if (complete.Claims.Count == 0 || claim.Limit <= 0)
        {
            var completed = await JobsCompleteAsync(complete, cancellationToken).ConfigureAwait(false);
            return new CompleteAndClaimResult(completed, await JobsClaimAsync(claim, cancellationToken).ConfigureAwait(false));
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = HotPathBatch(connection);
        var completeCommand = new NpgsqlBatchCommand(CompleteSql(complete));
        AddCompleteParameters(completeCommand.Parameters, complete);
        var claimCommand = new NpgsqlBatchCommand(ClaimSql(claim));
        AddClaimParameters(claimCommand.Parameters, claim);
        batch.BatchCommands.Add(completeCommand);
        batch.BatchCommands.Add(claimCommand);

        List<PermitRelease> releases = [];
        List<long> done;
        IReadOnlyList<ClaimedJob> claimed;
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await SkipHotPathSettingAsync(reader, cancellationToken).ConfigureAwait(false);
            done = await ReadCompletedAsync(reader, complete.Claims.Count, releases, cancellationToken).ConfigureAwait(false);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            claimed = await ReadClaimedAsync(reader, claim.Limit, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (IsProcessGone(e))
        {
            throw new ProcessGoneException($"process {claim.ProcessId} is no longer registered; it was pruned", e);
        }
        catch (PostgresException e) when (IsWorkflowNeeded(e))
        {
            // The batch rolled back whole (claim included): complete in a transaction with the workflow steps, then claim.
            var completed = await CompleteWithWorkflowAsync(complete, cancellationToken).ConfigureAwait(false);
            return new CompleteAndClaimResult(completed, await JobsClaimAsync(claim, cancellationToken).ConfigureAwait(false));
        }

        if (releases.Count > 0)
        {
            await PromoteAfterCommitAsync(releases, complete.Now, cancellationToken).ConfigureAwait(false);
        }

        return new CompleteAndClaimResult(done, claimed);
    }

    /// <summary>
    /// A batch for the claim and completion statements, whose cached generic plans are right whatever the row
    /// estimates (ids go through arrays, filters hide from the estimate): the batch first tells the server to use
    /// them, so a prepared statement (<see cref="WithKeelDefaults"/>) skips planning, which cost as much as running
    /// it (the server's custom-plan heuristic kept re-planning). The setting is local to the batch's transaction
    /// (<c>set_config(…, true)</c>; a batch is one implicit transaction), so it never outlives the batch, even behind
    /// a transaction-mode pooler. Its one-row result comes first: read the statements' results after
    /// <see cref="SkipHotPathSettingAsync"/>.
    /// </summary>
    private static NpgsqlBatch HotPathBatch(NpgsqlConnection connection)
    {
        var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(ClaimsSql.HotPathGenericPlan));
        return batch;
    }

    private static Task<bool> SkipHotPathSettingAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
        => reader.NextResultAsync(cancellationToken);

    private static bool IsProcessGone(PostgresException e)
        => e.SqlState == PostgresErrorCodes.ForeignKeyViolation && (e.ConstraintName?.Contains("process", StringComparison.Ordinal) ?? true);

    private static string ClaimSql(JobsClaimParams parameters) => (parameters.Queue.Kind, parameters.Suspects) switch
    {
        (QueueMatch.All, false) => ClaimsSql.JobsClaimAll,
        (QueueMatch.Exact, false) => ClaimsSql.JobsClaimExact,
        (QueueMatch.Prefix, false) => ClaimsSql.JobsClaimPrefix,
        (QueueMatch.All, true) => ClaimsSql.JobsClaimSuspectAll,
        (QueueMatch.Exact, true) => ClaimsSql.JobsClaimSuspectExact,
        (QueueMatch.Prefix, true) => ClaimsSql.JobsClaimSuspectPrefix,
        _ => throw new ArgumentOutOfRangeException(nameof(parameters), parameters.Queue.Kind, "unknown queue match"),
    };

    private static void AddClaimParameters(NpgsqlParameterCollection target, JobsClaimParams parameters)
    {
        target.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        target.Add(new NpgsqlParameter<int>("limit", NpgsqlDbType.Integer) { TypedValue = parameters.Limit });
        target.Add(Now(parameters.Now));
        if (parameters.Queue.Kind != QueueMatch.All)
        {
            target.Add(new NpgsqlParameter<string>("queue", NpgsqlDbType.Text) { TypedValue = parameters.Queue.Value });
        }
    }

    private static async Task<IReadOnlyList<ClaimedJob>> ReadClaimedAsync(NpgsqlDataReader reader, int limit, CancellationToken cancellationToken)
    {
        var claimed = new List<ClaimedJob>(Math.Min(limit, 1024));
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            claimed.Add(new ClaimedJob(
                ClaimId: reader.GetInt64(0),
                JobId: reader.GetInt64(1),
                Kind: reader.GetString(2),
                Queue: reader.GetString(3),
                Args: reader.GetString(4),
                Priority: reader.GetInt32(5),
                Attempt: reader.GetInt32(6),
                MaxAttempts: reader.GetInt32(7),
                WorkerLosses: reader.GetInt32(8),
                CreatedAt: reader.GetFieldValue<DateTimeOffset>(9),
                ClaimedAt: reader.GetFieldValue<DateTimeOffset>(10))
            {
                ReadyAt = reader.GetFieldValue<DateTimeOffset>(11),
                TraceParent = reader.IsDBNull(12) ? null : reader.GetString(12),
                Suspect = reader.GetBoolean(13),
                BatchId = reader.IsDBNull(14) ? null : reader.GetInt64(14),
                Checkpoint = reader.IsDBNull(15) ? null : reader.GetString(15),
            });
        }

        return claimed;
    }

    private static string CompleteSql(JobsCompleteParams parameters)
        => parameters.PreserveFinishedJobs ? ClaimsSql.JobsCompletePreserve : ClaimsSql.JobsCompleteDelete;

    private static void AddCompleteParameters(NpgsqlParameterCollection target, JobsCompleteParams parameters, bool workflowHere = false)
    {
        target.Add(new NpgsqlParameter<bool>("workflow_here", NpgsqlDbType.Boolean) { TypedValue = workflowHere });
        var claims = parameters.Claims;
        var claimIds = new long[claims.Count];
        var jobIds = new long[claims.Count];
        for (var i = 0; i < claims.Count; i++)
        {
            claimIds[i] = claims[i].ClaimId;
            jobIds[i] = claims[i].JobId;
        }

        target.Add(new NpgsqlParameter<long[]>("claim_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = claimIds });
        target.Add(new NpgsqlParameter<long[]>("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = jobIds });
        target.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        target.Add(Now(parameters.Now));
        if (parameters.PreserveFinishedJobs)
        {
            target.Add(Text("runner", parameters.Runner));
        }
    }

    // Reads the claim ids still held, collecting the permits given back so they are promoted after commit.
    private static async Task<List<long>> ReadCompletedAsync(NpgsqlDataReader reader, int count, List<PermitRelease> releases, CancellationToken cancellationToken, List<SettledJob>? settled = null)
    {
        var done = new List<long>(count);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            done.Add(reader.GetInt64(0));
            if (!reader.IsDBNull(1))
            {
                releases.Add(new PermitRelease(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetInt64(2)));
            }

            if (settled is not null && !reader.IsDBNull(3) && (!reader.IsDBNull(4) || !reader.IsDBNull(5)))
            {
                settled.Add(new SettledJob(reader.GetInt64(3), ContinueWhen.Succeeded, !reader.IsDBNull(4), reader.IsDBNull(5) ? null : reader.GetInt64(5)));
            }
        }

        return done;
    }

    /// <summary>
    /// A completion whose batch met a job in a workflow (the hot-path statement refused it and rolled back): the same
    /// statement again in a transaction of its own, which also advances the workflows of the jobs it finished.
    /// </summary>
    private async Task<IReadOnlyList<long>> CompleteWithWorkflowAsync(JobsCompleteParams parameters, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        List<PermitRelease> releases = [];
        List<SettledJob> settled = [];
        List<long> done;
        await using (var command = new NpgsqlCommand(CompleteSql(parameters), connection, transaction))
        {
            AddCompleteParameters(command.Parameters, parameters, workflowHere: true);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            done = await ReadCompletedAsync(reader, parameters.Claims.Count, releases, cancellationToken, settled).ConfigureAwait(false);
        }

        await new PostgreSqlWorkflow(connection, transaction, parameters.Now).SettleAsync(settled, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (releases.Count > 0)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return done;
    }

    /// <summary>The error <c>keel_workflow_needed()</c> raises: the statement rolled back, and must run again in a transaction.</summary>
    private static bool IsWorkflowNeeded(Exception e) => e is PostgresException { SqlState: "KL001" };

    /// <inheritdoc />
    public async Task<bool> JobFailAsync(JobFailParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Failure);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // A failure for good, or a cancelled run's end (even with a retry time: a cancelled job is never retried), may
        // settle a workflow, which takes more statements in the same transaction. A failure is not the hot path.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(ClaimsSql.JobFail, connection, transaction);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.ClaimId });
        p.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.JobId });
        p.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        p.Add(new NpgsqlParameter<string>("exception_type", NpgsqlDbType.Text) { TypedValue = parameters.Failure.ExceptionType });
        p.Add(new NpgsqlParameter<string>("message", NpgsqlDbType.Text) { TypedValue = parameters.Failure.Message });
        p.Add(new NpgsqlParameter("stack_trace", NpgsqlDbType.Text) { Value = (object?)parameters.Failure.StackTrace ?? DBNull.Value });
        p.Add(Time("retry_at", parameters.RetryAt));
        p.Add(Now(parameters.Now));
        p.Add(Text("runner", parameters.Runner));

        bool held;
        var workflow = false;
        var cancelled = false;
        PermitRelease? release = null;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            held = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) && reader.GetInt64(0) > 0;
            if (held && !reader.IsDBNull(2))
            {
                release = new PermitRelease(reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetInt64(3));
            }

            workflow = held && !reader.IsDBNull(4) && reader.GetBoolean(4);
            cancelled = held && !reader.IsDBNull(5) && reader.GetBoolean(5);
        }

        if (workflow)
        {
            await SettleIdsAsync(connection, transaction, [parameters.Claim.JobId], cancelled ? ContinueWhen.Discarded : ContinueWhen.Failed, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Failed for good or scheduled for a retry, the job gave its permit back: promote the next blocked job.
        if (release is { } r)
        {
            await PromoteAfterCommitAsync([r], parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return held;
    }

    /// <inheritdoc />
    public async Task<int> ClaimsReleaseAsync(ClaimsReleaseParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.ClaimIds is { Count: 0 })
        {
            return 0;
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);

        // A claim whose run was asked to stop ends its job discarded, which settles a workflow in the same transaction.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            parameters.ClaimIds is null ? ClaimsSql.ClaimsReleaseAll : ClaimsSql.ClaimsReleaseSome,
            connection,
            transaction);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(Now(parameters.Now));
        AddRunEnding(command.Parameters, parameters.Reason, parameters.Runner);
        if (parameters.ClaimIds is not null)
        {
            command.Parameters.Add(new NpgsqlParameter<long[]>("claim_ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { TypedValue = [.. parameters.ClaimIds] });
        }

        int released;
        List<PermitRelease>? releases = null;
        long[]? workflowCancelled = null;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            released = 0;
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                released = checked((int)reader.GetInt64(0));
                releases = ReadReleases(reader, 2, 3);
                workflowCancelled = ReadWorkflowCancelled(reader);
            }
        }

        await SettleCancelledAsync(connection, transaction, workflowCancelled, parameters.Now, cancellationToken).ConfigureAwait(false);
        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);

        // Jobs whose run had been asked to stop were discarded and gave their permits back: promote blocked jobs.
        if (releases is not null)
        {
            await PromoteAfterCommitAsync(releases, parameters.Now, cancellationToken).ConfigureAwait(false);
        }

        return released;
    }

    /// <summary>The jobs a release (<see cref="ClaimsSql.ReleaseTail"/>) discarded as cancelled that take part in a workflow.</summary>
    private static long[]? ReadWorkflowCancelled(NpgsqlDataReader reader) => reader.IsDBNull(4) ? null : reader.GetFieldValue<long[]>(4);

    /// <summary>Settles the workflows of jobs a release discarded as cancelled, in its transaction.</summary>
    private static async Task SettleCancelledAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long[]? jobIds, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        if (jobIds is { Length: > 0 })
        {
            await SettleIdsAsync(connection, transaction, jobIds, ContinueWhen.Discarded, now, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async Task<bool> ClaimHeldAsync(ClaimHeldParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(ClaimsSql.ClaimHeld, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.ClaimId });
        command.Parameters.Add(new NpgsqlParameter<long>("job_id", NpgsqlDbType.Bigint) { TypedValue = parameters.Claim.JobId });
        command.Parameters.Add(Now(parameters.Now));
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
    }
}
