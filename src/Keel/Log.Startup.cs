using Microsoft.Extensions.Logging;

namespace Keel;

/// <summary>Start-up's log messages (event ids 7101–7199, documented in docs/logging.md).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 7101, Level = LogLevel.Warning, Message = "The {Engine} database is unreachable at start-up ({Reason}); retrying for up to {Timeout} (Keel:StartupTimeout)")]
    public static partial void StartupDatabaseUnreachable(ILogger logger, string engine, string reason, TimeSpan timeout);

    [LoggerMessage(EventId = 7102, Level = LogLevel.Information, Message = "The {Engine} database is reachable after {Elapsed}; starting")]
    public static partial void StartupDatabaseReachable(ILogger logger, string engine, TimeSpan elapsed);

    [LoggerMessage(EventId = 7103, Level = LogLevel.Debug, Message = "Start-up could not reach the {Engine} database; the first error in full")]
    public static partial void StartupDatabaseError(ILogger logger, Exception exception, string engine);
}
