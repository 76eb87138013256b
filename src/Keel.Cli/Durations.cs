using System.Globalization;

namespace Keel.Cli;

/// <summary>Parses durations such as <c>90s</c>, <c>15m</c>, <c>2h</c>, <c>7d</c> or <c>01:30:00</c>.</summary>
internal static class Durations
{
    public static TimeSpan Parse(string text)
    {
        var value = text.Trim();
        if (value.Length > 1 && double.TryParse(value[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && number >= 0)
        {
            switch (char.ToLowerInvariant(value[^1]))
            {
                case 's': return TimeSpan.FromSeconds(number);
                case 'm': return TimeSpan.FromMinutes(number);
                case 'h': return TimeSpan.FromHours(number);
                case 'd': return TimeSpan.FromDays(number);
            }
        }

        return TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) && span >= TimeSpan.Zero
            ? span
            : throw new UsageException($"'{text}' is not a duration: use 90s, 15m, 2h, 7d or hh:mm:ss");
    }

    public static string Format(TimeSpan? span) => span switch
    {
        null => "-",
        { TotalSeconds: < 60 } s => s.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + "s",
        { TotalMinutes: < 60 } s => s.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture) + "m",
        { TotalHours: < 48 } s => s.TotalHours.ToString("0.#", CultureInfo.InvariantCulture) + "h",
        { } s => s.TotalDays.ToString("0.#", CultureInfo.InvariantCulture) + "d",
    };
}
