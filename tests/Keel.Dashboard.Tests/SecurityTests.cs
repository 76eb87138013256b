using System.Net;
using System.Text.RegularExpressions;
using Keel.Dashboard.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Dashboard.Tests;

/// <summary>
/// The dashboard's guards at the HTTP level, without a browser: antiforgery on every POST, read-only mode, the
/// loopback rule (a test header stands in for the remote address) and its replacement by an authorization policy.
/// </summary>
public sealed partial class SecurityTests
{
    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();

    private static HttpClient NewClient(DashboardApp app, CookieContainer? cookies = null)
        => new(new HttpClientHandler { CookieContainer = cookies ?? new CookieContainer(), UseCookies = true, AllowAutoRedirect = false }) { BaseAddress = new Uri(app.Root) };

    private static async Task<string> TokenAsync(HttpClient client, string path)
    {
        var html = await client.GetStringAsync(path);
        return WebUtility.HtmlDecode(TokenField().Match(html).Groups[1].Value);
    }

    private static FormUrlEncodedContent Form(params (string Name, string Value)[] fields)
        => new(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value)));

    [Fact]
    public async Task A_post_without_the_antiforgery_token_and_cookie_is_refused_and_changes_nothing()
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite);
        var failed = (await app.Seed.FailedAsync(1))[0];
        using var forger = NewClient(app);

        var response = await forger.PostAsync("/keel/actions/retry", Form(("ids", failed.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("return", "/keel/jobs/failed")));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("antiforgery", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(JobState.Failed, (await app.Client.GetJobAsync(failed))!.State);
    }

    [Fact]
    public async Task A_token_from_another_browser_session_is_refused_and_the_real_one_is_accepted()
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite);
        var failed = (await app.Seed.FailedAsync(1))[0];
        var id = failed.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var victim = NewClient(app);
        var stolen = await TokenAsync(victim, "/keel/jobs/failed");
        using var forger = NewClient(app);
        await forger.GetAsync("/keel/"); // a session (cookie) of its own

        var forged = await forger.PostAsync("/keel/actions/retry", Form(("__RequestVerificationToken", stolen), ("ids", id)));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Equal(JobState.Failed, (await app.Client.GetJobAsync(failed))!.State);

        var genuine = await victim.PostAsync("/keel/actions/retry", Form(("__RequestVerificationToken", stolen), ("ids", id), ("return", "/keel/jobs/failed")));
        Assert.Equal(HttpStatusCode.SeeOther, genuine.StatusCode);
        Assert.StartsWith("/keel/jobs/failed?notice=", genuine.Headers.Location!.OriginalString, StringComparison.Ordinal);
        Assert.Equal(JobState.Ready, (await app.Client.GetJobAsync(failed))!.State);
    }

    [Fact]
    public async Task An_action_never_redirects_outside_the_dashboard()
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite);
        await app.Seed.ReadyAsync();
        using var client = NewClient(app);
        var token = await TokenAsync(client, "/keel/queues");
        foreach (var target in new[] { "https://evil.example/", "//evil.example/keel/", "/other-app/" })
        {
            var response = await client.PostAsync("/keel/actions/queue-pause", Form(("__RequestVerificationToken", token), ("queue", "mail"), ("return", target)));
            Assert.Equal(HttpStatusCode.SeeOther, response.StatusCode);
            Assert.StartsWith("/keel/?notice=", response.Headers.Location!.OriginalString, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Mounted_at_the_root_neither_the_redirect_nor_the_confirmation_leads_to_another_host()
    {
        // `keel dashboard` serves at the root, where "//host/…" also starts with the base followed by a slash.
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite, prefix: "/");
        var failed = (await app.Seed.FailedAsync(2)).Select(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        using var client = NewClient(app);
        var token = await TokenAsync(client, "/queues");

        var redirect = await client.PostAsync("/actions/queue-pause", Form(("__RequestVerificationToken", token), ("queue", "mail"), ("return", "//evil.example/")));
        Assert.StartsWith("/?notice=", redirect.Headers.Location!.OriginalString, StringComparison.Ordinal);

        var confirm = await client.PostAsync("/actions/retry", Form(("__RequestVerificationToken", token), ("ids", failed[0]), ("ids", failed[1]), ("return", "//evil.example/")));
        var html = await confirm.Content.ReadAsStringAsync();
        Assert.Contains("Please confirm", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"//evil.example/\"", html, StringComparison.Ordinal);
        Assert.Contains("<a href=\"/\">Cancel</a>", html, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Read_only_mode_shows_no_actions_and_refuses_every_post()
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite, o => o.ReadOnly = true);
        var failed = (await app.Seed.FailedAsync(1))[0];
        await app.Seed.ReadyAsync();
        using var client = NewClient(app);
        foreach (var path in new[] { "/keel/", "/keel/queues", "/keel/jobs/failed", $"/keel/job/{failed}", "/keel/jobs/in-progress", "/keel/recurring" })
        {
            var html = await client.GetStringAsync(path);
            Assert.DoesNotContain("method=\"post\"", html, StringComparison.Ordinal);
            Assert.Contains("read-only", html, StringComparison.Ordinal);
        }

        var response = await client.PostAsync("/keel/actions/queue-pause", Form(("queue", "mail")));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("read-only", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False((await app.Admin.ListQueuesAsync()).Single(q => q.Name == "mail").Paused);
    }

    [Theory]
    [InlineData("10.1.2.3", HttpStatusCode.Forbidden)]
    [InlineData("192.168.0.7", HttpStatusCode.Forbidden)]
    [InlineData("2001:db8::1", HttpStatusCode.Forbidden)]
    [InlineData("127.0.0.1", HttpStatusCode.OK)]
    [InlineData("::1", HttpStatusCode.OK)]
    [InlineData("::ffff:127.0.0.1", HttpStatusCode.OK)]
    public async Task Without_a_policy_only_loopback_addresses_are_served(string remote, HttpStatusCode expected)
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite);
        await app.Seed.ReadyAsync();
        using var client = NewClient(app);
        foreach (var path in new[] { "/keel/", "/keel/jobs/ready", "/keel/assets/keel.css" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Add(DashboardApp.RemoteAddressHeader, remote);
            Assert.Equal(expected, (await client.SendAsync(request)).StatusCode);
        }

        using var post = new HttpRequestMessage(HttpMethod.Post, "/keel/actions/queue-pause") { Content = Form(("queue", "mail")) };
        post.Headers.Add(DashboardApp.RemoteAddressHeader, remote);
        var posted = await client.SendAsync(post);
        Assert.Equal(expected == HttpStatusCode.OK ? HttpStatusCode.BadRequest : HttpStatusCode.Forbidden, posted.StatusCode); // loopback: refused for the missing token instead
        Assert.False((await app.Admin.ListQueuesAsync()).Single(q => q.Name == "mail").Paused);
    }

    [Fact]
    public async Task With_an_authorization_policy_the_policy_decides_instead_of_the_address()
    {
        var asked = 0;
        await using var app = await DashboardApp.StartAsync(
            Engine.Sqlite,
            o => o.AuthorizationPolicy = "keel-operators",
            services => services.AddAuthorization(a => a.AddPolicy("keel-operators", p => p.RequireAssertion(_ =>
            {
                Interlocked.Increment(ref asked);
                return true;
            }))));
        using var client = NewClient(app);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/keel/");
        request.Headers.Add(DashboardApp.RemoteAddressHeader, "10.1.2.3");

        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
        Assert.True(asked > 0);
    }

    [Fact]
    public async Task The_redaction_hook_decides_what_the_job_page_shows_of_the_arguments()
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite, o => o.RedactArgs = (job, args) => job.Kind == "emails.welcome"
            ? System.Text.Json.Nodes.JsonNode.Parse(args)!.AsObject().Also(a => a["apiKey"] = "***").ToJsonString()
            : args);
        var id = await app.Seed.ReadyAsync("ada@example.com");
        using var client = NewClient(app);
        var html = await client.GetStringAsync($"/keel/job/{id}");
        Assert.Contains("ada@example.com", html, StringComparison.Ordinal);
        Assert.Contains("***", html, StringComparison.Ordinal);
        Assert.DoesNotContain("sk_live_51Hsecret", html, StringComparison.Ordinal);
        Assert.Contains("sk_live_51Hsecret", (await app.Client.GetJobAsync(id))!.Args, StringComparison.Ordinal); // stored as is
    }

    [Fact]
    public async Task The_pages_forbid_inline_script_and_framing()
    {
        await using var app = await DashboardApp.StartAsync(Engine.Sqlite);
        using var client = NewClient(app);
        var response = await client.GetAsync("/keel/");
        var policy = string.Join(' ', response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
    }
}

internal static class JsonObjectExtensions
{
    public static System.Text.Json.Nodes.JsonObject Also(this System.Text.Json.Nodes.JsonObject value, Action<System.Text.Json.Nodes.JsonObject> change)
    {
        change(value);
        return value;
    }
}
