using System.CommandLine;

namespace Keel.Cli;

/// <summary>Newest-first lists read a page at a time: <c>--limit</c> rows, then <c>--before</c> the last id shown.</summary>
public static partial class KeelCli
{
    /// <summary>The paging options of a list command, and its page footer.</summary>
    private sealed class Paging
    {
        private readonly Option<int> _limit = new("--limit") { Description = "Page size (1–10000)", DefaultValueFactory = _ => 50 };
        private readonly Option<long?> _before;
        private readonly string _singular;
        private readonly string _plural;

        public Paging(Command command, string singular, string plural)
        {
            _singular = singular;
            _plural = plural;
            _before = new Option<long?>("--before") { Description = $"Next page: only {plural} with an id below this one" };
            command.Options.Add(_limit);
            command.Options.Add(_before);
        }

        /// <summary>The page size asked for; a usage error outside 1–10000.</summary>
        public int Size(ParseResult parse)
        {
            var size = parse.GetValue(_limit);
            return size is >= 1 and <= 10_000 ? size : throw new UsageException($"--limit must be between 1 and 10000 (was {size})");
        }

        /// <summary>The id the page starts below, if any.</summary>
        public long? Before(ParseResult parse) => parse.GetValue(_before);

        /// <summary>
        /// A page out of <paramref name="rows"/>, read one longer than <paramref name="size"/> to know whether another
        /// follows: the page, and the <c>--before</c> of the next one (null when none).
        /// </summary>
        public static (List<T> Page, long? Next) Cut<T>(IReadOnlyList<T> rows, int size, Func<T, long> id)
        {
            var page = rows.Take(size).ToList();
            return (page, rows.Count > size ? id(page[^1]) : null);
        }

        /// <summary>The line under a table: how many rows, and the next page's option or that there is none.</summary>
        public string Footer(int count, long? next)
            => $"{count} {(count == 1 ? _singular : _plural)}; {(next is { } id ? $"next page: --before {id}" : "no more")}";
    }
}
