using Microsoft.Playwright;

namespace Keel.Dashboard.Tests.Infrastructure;

/// <summary>
/// One headless Chromium for a whole collection of tests (each test opens its own context). It is the system's
/// Chromium; Playwright downloads nothing. Without it every browser test fails with a message saying what to install.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public IBrowser Browser => _browser ?? throw new InvalidOperationException("the browser did not start");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"Chromium is missing at {ChromiumPath}: the dashboard's browser tests need it. Install it with `apt-get update && apt-get install -y chromium` (scripts/test-deps.sh, which ./build.sh test runs first, does this as root).");
        }

        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        });
    }

    /// <summary>A fresh browser context (cookies of its own) with a laptop-sized viewport; dispose it when done.</summary>
    public async Task<IBrowserContext> NewContextAsync(DashboardApp app)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = app.Root,
            ViewportSize = new ViewportSize { Width = 1366, Height = 860 },
            Locale = "en-US",
            TimezoneId = "UTC",
        });
        context.SetDefaultTimeout(15_000);
        return context;
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}
