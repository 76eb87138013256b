using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Encodings.Web;

namespace Keel.Dashboard.Internal;

/// <summary>Markup that is written as is: only for literals and for markup built by <see cref="HtmlWriter"/>.</summary>
/// <param name="Value">The markup.</param>
internal readonly record struct Raw(string Value);

/// <summary>
/// Builds a page. Every value interpolated into <see cref="Add"/> is HTML-encoded unless it is <see cref="Raw"/>, so
/// job arguments, error messages and query strings can never inject markup.
/// </summary>
internal sealed class HtmlWriter
{
    public StringBuilder Builder { get; } = new(16 * 1024);

    /// <summary>Appends the interpolated markup, encoding every hole.</summary>
    /// <param name="handler">The markup.</param>
    public void Add([InterpolatedStringHandlerArgument("")] ref HtmlHandler handler)
    {
    }

    /// <summary>Appends literal markup.</summary>
    /// <param name="markup">Markup written by this code, never data.</param>
    public void Raw(string markup) => Builder.Append(markup);

    public override string ToString() => Builder.ToString();

    /// <summary>Encodes text for an element body or a quoted attribute.</summary>
    public static string Encode(string? text) => text is null ? string.Empty : HtmlEncoder.Default.Encode(text);
}

/// <summary>The interpolation handler behind <see cref="HtmlWriter.Add"/>: literals as is, holes encoded.</summary>
[InterpolatedStringHandler]
internal readonly ref struct HtmlHandler
{
    private readonly StringBuilder _builder;

    public HtmlHandler(int literalLength, int formattedCount, HtmlWriter writer)
    {
        _ = literalLength;
        _ = formattedCount;
        _builder = writer.Builder;
    }

    public void AppendLiteral(string literal) => _builder.Append(literal);

    public void AppendFormatted(Raw raw) => _builder.Append(raw.Value);

    public void AppendFormatted(string? text) => _builder.Append(HtmlWriter.Encode(text));

    public void AppendFormatted(long value) => _builder.Append(value.ToString(CultureInfo.InvariantCulture));

    public void AppendFormatted(int value) => _builder.Append(value.ToString(CultureInfo.InvariantCulture));

    public void AppendFormatted<T>(T value)
        => _builder.Append(HtmlWriter.Encode(value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value?.ToString()));

    public void AppendFormatted<T>(T value, string format)
        where T : IFormattable
        => _builder.Append(HtmlWriter.Encode(value.ToString(format, CultureInfo.InvariantCulture)));
}
