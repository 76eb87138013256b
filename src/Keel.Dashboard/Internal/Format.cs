using System.Globalization;

namespace Keel.Dashboard.Internal;

/// <summary>How the dashboard writes ages, times and counts.</summary>
internal static class Format
{
    /// <summary>"850 ms", "3 s", "2 min", "1 h 5 min", "3 d 4 h".</summary>
    public static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }

        return age.TotalSeconds switch
        {
            < 1 => $"{(int)age.TotalMilliseconds} ms",
            < 60 => $"{(int)age.TotalSeconds} s",
            < 3600 => $"{(int)age.TotalMinutes} min",
            < 86400 => age.Minutes == 0 ? $"{(int)age.TotalHours} h" : $"{(int)age.TotalHours} h {age.Minutes} min",
            _ => age.Hours == 0 ? $"{(int)age.TotalDays} d" : $"{(int)age.TotalDays} d {age.Hours} h",
        };
    }

    /// <summary>A UTC time as "2026-11-27 03:05:12Z".</summary>
    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>"12,345", or "10,000+" when the count passed its cap.</summary>
    public static string Count(long count, int limit)
        => count > limit ? limit.ToString("N0", CultureInfo.InvariantCulture) + "+" : count.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>A number with thousands separators.</summary>
    public static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>Cuts long text for a table cell (the full text is on the job page).</summary>
    public static string Truncate(string? text, int length)
        => text is null ? string.Empty : text.Length <= length ? text : string.Concat(text.AsSpan(0, length - 1), "…");
}
