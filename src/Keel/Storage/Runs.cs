using System.Text.Json;
using System.Text.Json.Serialization;

namespace Keel.Storage;

/// <summary>How runs that did not finish their job end, as stored in <c>keel_job_runs.outcome</c>.</summary>
public static class RunOutcomes
{
    /// <summary>The job threw (or timed out): the attempt counted; a retry was scheduled or the job failed for good.</summary>
    public const string Failed = "failed";

    /// <summary>Its process was lost (exited, vanished, lease expired); <c>charged</c> says whether it counted.</summary>
    public const string Lost = "lost";

    /// <summary>Put back to ready without counting an attempt (graceful stop, lost lease, reconcile, operator).</summary>
    public const string Released = "released";

    /// <summary>The run's result arrived after its claim was recovered elsewhere, and was not written.</summary>
    public const string Rejected = "rejected";

    /// <summary>The run ignored its cancellation; the worker stopped waiting for it and took its slot back.</summary>
    public const string Abandoned = "abandoned";

    /// <summary>
    /// Someone cancelled the job (<see cref="IKeelAdmin.CancelAsync(long, string, CancellationToken)"/>): it was discarded — before it started, or when its
    /// run stopped — and is not retried. The detail says who and why.
    /// </summary>
    public const string Cancelled = "cancelled";
}

/// <summary>The <see cref="RunEnding.Cause"/> codes of cancelled runs (<see cref="RunOutcomes.Cancelled"/>).</summary>
public static class RunCauses
{
    /// <summary>Cancelled before it started: it was ready, scheduled, blocked or awaiting its parents.</summary>
    public const string CancelledBeforeStart = "not-started";

    /// <summary>Its run returned after its cancellation token fired.</summary>
    public const string CancelHonoured = "honoured";

    /// <summary>Its run ignored its cancellation past the grace: abandoned in-process, or its process was replaced.</summary>
    public const string CancelEscalated = "escalated";

    /// <summary>Its process died or was pruned before the run ended; recovery discarded it instead of retrying it.</summary>
    public const string CancelledWithProcess = "process-ended";

    /// <summary>
    /// Cancelled with <see cref="CancelOptions.Resume"/>: its run stopped and the job went back to its queue with its
    /// checkpoint (outcome <see cref="RunOutcomes.Released"/>, uncounted).
    /// </summary>
    public const string CancelResumed = "cancel-resume";
}

/// <summary>Why a run ended without finishing its job: what goes in the job's run history.</summary>
/// <param name="Outcome">One of <see cref="RunOutcomes"/>.</param>
/// <param name="Cause">A stable code, e.g. <c>stop</c>, <c>reconcile</c>, <c>lease-lost</c>, <c>process-exited</c>.</param>
/// <param name="Detail">A sentence for people.</param>
public sealed record RunEnding(string Outcome, string Cause, string Detail);

/// <summary>The process that ran a job, as recorded in its history.</summary>
/// <param name="ProcessId">The process row id (rows go when processes stop; this stays).</param>
/// <param name="Name">The process row's name.</param>
/// <param name="Pid">The OS pid.</param>
/// <param name="Host">The host name.</param>
public sealed record Runner(
    [property: JsonPropertyName("process")] long ProcessId,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("host")] string Host)
{
    /// <summary>The compact JSON stored in <c>finished_by</c> and <c>keel_job_runs.runner</c>.</summary>
    /// <returns>The JSON.</returns>
    public string ToJson() => JsonSerializer.Serialize(this, RunnerJson.Default.Runner);

    /// <summary>Reads what <see cref="ToJson"/> wrote; null for null, empty or unreadable text.</summary>
    /// <param name="json">The stored text.</param>
    /// <returns>The runner, or null.</returns>
    public static Runner? Parse(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(json, RunnerJson.Default.Runner);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>One run of a job, as its history tells it.</summary>
/// <param name="Attempt">The attempt the run was.</param>
/// <param name="Outcome">
/// How it ended: <c>running</c>, <c>finished</c>, or one of <see cref="RunOutcomes"/>.
/// </param>
/// <param name="Cause">The cause code, when it did not finish; e.g. <c>process-exited</c>, <c>stop</c>.</param>
/// <param name="Charged">Whether it counted against the job (an attempt, or a worker loss).</param>
/// <param name="Runner">Who ran it, when known.</param>
/// <param name="StartedAt">When it started, when known.</param>
/// <param name="EndedAt">When it ended; null while running.</param>
/// <param name="Detail">A sentence for people.</param>
/// <param name="SharedWith">Job ids that were running beside it in its process when it was lost.</param>
/// <param name="ClaimId">The claim it ran under: its fencing token.</param>
public sealed record JobRun(
    int Attempt,
    string Outcome,
    string? Cause,
    bool Charged,
    Runner? Runner,
    DateTimeOffset? StartedAt,
    DateTimeOffset? EndedAt,
    string? Detail,
    IReadOnlyList<long> SharedWith,
    long? ClaimId)
{
    /// <summary>Outcome of a run still going on.</summary>
    public const string Running = "running";

    /// <summary>Outcome of a run that finished the job.</summary>
    public const string Finished = "finished";

    /// <summary>Parses the stored comma-separated ids.</summary>
    /// <param name="text">The stored text.</param>
    /// <returns>The ids.</returns>
    public static IReadOnlyList<long> ParseIds(string? text)
        => string.IsNullOrEmpty(text) ? [] : [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => long.Parse(s, System.Globalization.CultureInfo.InvariantCulture))];
}

[JsonSerializable(typeof(Runner))]
internal sealed partial class RunnerJson : JsonSerializerContext;

/// <summary>A line a run logged through <see cref="JobContext.Logger"/>.</summary>
/// <param name="Attempt">The attempt that logged it.</param>
/// <param name="At">When.</param>
/// <param name="Level">The level's name (<c>Information</c>, <c>Warning</c>, …).</param>
/// <param name="Message">The formatted message (with the exception's type and message, if one was logged).</param>
public sealed record JobLogLine(int Attempt, DateTimeOffset At, string Level, string Message);
