using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;
using Keel.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Keel.PostgreSql;

/// <summary>Direct hand-off: an idle worker's offer, taken by a one-job enqueue, announced by NOTIFY.</summary>
public sealed partial class PostgreSqlStorage : IJobHandOffs
{
    /// <summary>
    /// The most bytes of arguments, kind, queue and trace parent a handed-off job may carry: its notification holds them,
    /// and PostgreSQL refuses a payload of 8,000 bytes or more. A larger job is enqueued as ready.
    /// </summary>
    private const int HandOffPayloadBudget = 6_000;

    /// <inheritdoc />
    public async Task<long?> HandOffOfferAsync(HandOffOfferParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(parameters.Queues);
        await DataSourceAsync(cancellationToken).ConfigureAwait(false);
        if (Pooled is true || parameters.Queues.Count == 0)
        {
            return null; // Nothing listens behind a transaction-mode pooler (ListenAsync): a hand-off would wait for a poll.
        }

        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(HandOffSql.Offer, connection);
        command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        command.Parameters.Add(new NpgsqlParameter<string[]>("queues", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. parameters.Queues.Select(OfferedQueue)] });
        command.Parameters.Add(Now(parameters.Now));
        try
        {
            return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
        catch (PostgresException e) when (IsProcessGone(e))
        {
            throw new ProcessGoneException($"process {parameters.ProcessId} is no longer registered; it was pruned", e);
        }
    }

    /// <inheritdoc />
    public async Task<HandOffResolution> HandOffResolveAsync(HandOffResolveParams parameters, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        if (parameters.OfferId == 0)
        {
            if (!parameters.Withdraw)
            {
                throw new ArgumentException("offer 0 (every offer of the process) can only be withdrawn", nameof(parameters));
            }

            await using var all = new NpgsqlCommand(HandOffSql.WithdrawAll, connection);
            all.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
            await all.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return new HandOffResolution(false, null);
        }

        object? claim;
        await using (var command = new NpgsqlCommand(parameters.Withdraw ? HandOffSql.Withdraw : HandOffSql.Read, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long>("offer_id", NpgsqlDbType.Bigint) { TypedValue = parameters.OfferId });
            command.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
            claim = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }

        if (claim is null)
        {
            return new HandOffResolution(false, null); // Gone: withdrawn before, or its process pruned.
        }

        if (claim is DBNull)
        {
            return new HandOffResolution(!parameters.Withdraw, null);
        }

        // A statement of its own, so that it sees a claim committed while the withdrawal waited for its enqueue.
        await using var read = new NpgsqlCommand(HandOffSql.TakenJob, connection);
        read.Parameters.Add(new NpgsqlParameter<long>("claim_id", NpgsqlDbType.Bigint) { TypedValue = (long)claim });
        read.Parameters.Add(new NpgsqlParameter<long>("process_id", NpgsqlDbType.Bigint) { TypedValue = parameters.ProcessId });
        await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var jobs = await ReadClaimedAsync(reader, 1, cancellationToken).ConfigureAwait(false);
        return new HandOffResolution(false, jobs.Count == 0 ? null : jobs[0]);
    }

    /// <inheritdoc />
    public bool TryReadHandOff(string payload, [NotNullWhen(true)] out HandOff? handOff)
    {
        handOff = null;
        if (payload is null || !payload.StartsWith(HandOffSql.PayloadPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        using var document = JsonDocument.Parse(payload.AsMemory(HandOffSql.PayloadPrefix.Length));
        var root = document.RootElement;
        var job = new ClaimedJob(
            ClaimId: root.GetProperty("claim").GetInt64(),
            JobId: root.GetProperty("job").GetInt64(),
            Kind: root.GetProperty("kind").GetString()!,
            Queue: root.GetProperty("queue").GetString()!,
            Args: root.GetProperty("args").GetRawText(),
            Priority: root.GetProperty("priority").GetInt32(),
            Attempt: root.GetProperty("attempt").GetInt32(),
            MaxAttempts: root.GetProperty("max_attempts").GetInt32(),
            WorkerLosses: root.GetProperty("worker_losses").GetInt32(),
            CreatedAt: root.GetProperty("created_at").GetDateTimeOffset(),
            ClaimedAt: root.GetProperty("claimed_at").GetDateTimeOffset())
        {
            ReadyAt = root.GetProperty("created_at").GetDateTimeOffset(),
            TraceParent = root.GetProperty("trace_parent").ValueKind == JsonValueKind.Null ? null : root.GetProperty("trace_parent").GetString(),
        };
        handOff = new HandOff(root.GetProperty("offer").GetInt64(), root.GetProperty("process").GetInt64(), job);
        return true;
    }

    /// <summary>True when a one-job insert may go through <see cref="HandOffSql.JobInsert"/>: its notification would fit.</summary>
    private static bool FitsHandOff(NewJob job)
        => Encoding.UTF8.GetByteCount(job.Args) + Encoding.UTF8.GetByteCount(job.Kind) + Encoding.UTF8.GetByteCount(job.Queue)
            + (job.TraceParent?.Length ?? 0) <= HandOffPayloadBudget;

    /// <summary>
    /// Inserts one plain job, handing it to an idle worker when one offers (<see cref="HandOffSql.JobInsert"/>).
    /// </summary>
    private async Task<long> JobInsertHandingOffAsync(NewJob job, DateTimeOffset? now, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(HandOffSql.JobInsert, connection);
        AddPlainJobParameters(command.Parameters, job);
        command.Parameters.Add(Text("trace_parent", job.TraceParent));
        command.Parameters.Add(Now(now));
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>A queue filter as an offer stores it: <c>*</c>, <c>=name</c> or <c>^prefix</c>.</summary>
    private static string OfferedQueue(QueueFilter filter) => filter.Kind switch
    {
        QueueMatch.All => "*",
        QueueMatch.Exact => "=" + filter.Value,
        QueueMatch.Prefix => "^" + filter.Value,
        _ => throw new ArgumentOutOfRangeException(nameof(filter), filter.Kind, "unknown queue match"),
    };
}
