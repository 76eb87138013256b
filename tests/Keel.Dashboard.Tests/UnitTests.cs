using System.Net;
using Keel.Dashboard.Internal;

namespace Keel.Dashboard.Tests;

public sealed class UnitTests
{
    [Theory]
    [InlineData(0.25, "250 ms")]
    [InlineData(3, "3 s")]
    [InlineData(125, "2 min")]
    [InlineData(3600, "1 h")]
    [InlineData(3900, "1 h 5 min")]
    [InlineData(90000, "1 d 1 h")]
    [InlineData(-5, "0 ms")]
    public void Ages_read_like_a_person_would_say_them(double seconds, string expected)
        => Assert.Equal(expected, Format.Age(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(9_999, "9,999")]
    [InlineData(10_000, "10,000")]
    [InlineData(10_001, "10,000+")]
    public void Counts_past_the_cap_say_so(long count, string expected) => Assert.Equal(expected, Format.Count(count, 10_000));

    [Fact]
    public void Interpolated_values_are_encoded_and_only_raw_markup_is_not()
    {
        var html = new HtmlWriter();
        var evil = "<script>alert('x')</script>\"";
        html.Add($"<td title=\"{evil}\">{evil}</td>{new Raw("<b>ok</b>")}");
        Assert.DoesNotContain("<script>", html.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("\"<", html.ToString(), StringComparison.Ordinal);
        Assert.EndsWith("<b>ok</b>", html.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.8.9.10", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("10.0.0.1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    [InlineData("fe80::1", false)]
    public void Loopback_is_recognised_in_every_form(string address, bool loopback)
        => Assert.Equal(loopback, DashboardEndpoints.IsLoopback(IPAddress.Parse(address)));

    [Fact]
    public void An_unknown_remote_address_is_not_loopback() => Assert.False(DashboardEndpoints.IsLoopback(null));

    [Fact]
    public async Task Mounting_without_AddKeelDashboard_says_what_to_call()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        await using var app = builder.Build();
        var error = Assert.Throws<InvalidOperationException>(() => app.MapKeelDashboard("/keel"));
        Assert.Contains("AddKeelDashboard()", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2026-11-27T03:05", "2026-11-27T03:05:00.0000000+00:00")]
    [InlineData("2026-11-27T03:05:09+02:00", "2026-11-27T01:05:09.0000000+00:00")]
    public void Filter_times_without_an_offset_are_utc(string text, string expected)
        => Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), DashboardContext.ParseTime(text, "from"));
}
