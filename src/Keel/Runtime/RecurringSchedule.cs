using Cronos;

namespace Keel.Runtime;

/// <summary>A parsed recurring schedule: a Cronos expression read in a time zone.</summary>
internal sealed class RecurringSchedule
{
    private RecurringSchedule(CronExpression cron, TimeZoneInfo zone)
    {
        Cron = cron;
        Zone = zone;
    }

    public CronExpression Cron { get; }

    public TimeZoneInfo Zone { get; }

    /// <summary>Parses a 5-field or 6-field (seconds first) cron expression, or a macro such as <c>@hourly</c>.</summary>
    public static bool TryParseCron(string? expression, out CronExpression? cron, out string? error)
    {
        cron = null;
        var text = expression?.Trim() ?? string.Empty;
        if (text.Length == 0)
        {
            error = "the schedule is empty";
            return false;
        }

        CronFormat format;
        if (text.StartsWith('@'))
        {
            format = CronFormat.Standard;
        }
        else
        {
            var fields = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            switch (fields)
            {
                case 5:
                    format = CronFormat.Standard;
                    break;
                case 6:
                    format = CronFormat.IncludeSeconds;
                    break;
                default:
                    error = $"it has {fields} fields; a cron expression has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first), or is a macro such as @hourly";
                    return false;
            }
        }

        try
        {
            cron = CronExpression.Parse(text, format);
            error = null;
            return true;
        }
        catch (CronFormatException e)
        {
            error = e.Message;
            return false;
        }
    }

    /// <summary>Finds a time zone by IANA or Windows id; null or empty means UTC.</summary>
    public static bool TryFindZone(string? id, out TimeZoneInfo zone, out string? error)
    {
        zone = TimeZoneInfo.Utc;
        error = null;
        if (string.IsNullOrWhiteSpace(id))
        {
            return true;
        }

        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(id.Trim());
            return true;
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            error = e.Message;
            return false;
        }
    }

    public static bool TryCreate(string? expression, string? timeZone, out RecurringSchedule? schedule, out string? error)
    {
        schedule = null;
        if (!TryParseCron(expression, out var cron, out error))
        {
            error = $"schedule '{expression}' is not a valid cron expression: {error}";
            return false;
        }

        if (!TryFindZone(timeZone, out var zone, out error))
        {
            error = $"time zone '{timeZone}' is not known: {error}";
            return false;
        }

        schedule = new RecurringSchedule(cron!, zone);
        return true;
    }

    /// <summary>The first tick strictly after <paramref name="after"/>, or null when there is none.</summary>
    public DateTimeOffset? Next(DateTimeOffset after) => Cron.GetNextOccurrence(after, Zone);

    /// <summary>The ticks in (<paramref name="after"/>, <paramref name="upTo"/>], newest first, lazily.</summary>
    public IEnumerable<DateTimeOffset> Descending(DateTimeOffset after, DateTimeOffset upTo)
        => upTo > after ? Cron.GetOccurrencesDescending(upTo, after, Zone, fromInclusive: true, toInclusive: false) : [];
}
