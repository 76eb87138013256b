using Microsoft.Playwright;

namespace Keel.Dashboard.Tests.Infrastructure;

/// <summary>
/// Where the tests save the screenshots the docs show: <c>KEEL_SCREENSHOTS_DIR</c> when set (point it at docs/images to
/// refresh them), a temp folder otherwise — so a normal test run never touches the repository.
/// </summary>
public static class Screenshots
{
    public const string EnvironmentVariable = "KEEL_SCREENSHOTS_DIR";

    public static async Task<string> SaveAsync(IPage page, string name)
    {
        var folder = Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } configured
            ? configured
            : Path.Combine(Path.GetTempPath(), "keel-dashboard-screenshots");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }
}
