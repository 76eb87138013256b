using System.Diagnostics;
using System.Security.Cryptography;

namespace Keel.Runtime;

/// <summary>Facts about this OS process that go into its process rows.</summary>
internal static class ProcessIdentity
{
    private static readonly Lazy<DateTimeOffset> StartedAtLazy = new(() =>
    {
        using var self = Process.GetCurrentProcess();
        return new DateTimeOffset(self.StartTime.ToUniversalTime(), TimeSpan.Zero);
    });

    public static int Pid => Environment.ProcessId;

    public static string Hostname => Environment.MachineName;

    public static DateTimeOffset StartedAt => StartedAtLazy.Value;

    /// <summary>A unique process-row name such as <c>worker-3f2a9c0d1e</c>.</summary>
    public static string NewName(string kind) => $"{kind.ToLowerInvariant()}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(5))}";
}
