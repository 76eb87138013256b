using System.Text;
using Keel.Storage;
using Microsoft.Extensions.Logging;

namespace Keel.Runtime;

/// <summary>
/// <see cref="JobContext.Logger"/> of one run: every line goes to the application's own logging as well, and is kept
/// with the job up to <see cref="KeelOptions.MaxJobLogLines"/> lines and <see cref="KeelOptions.MaxJobLogBytes"/> per
/// attempt (one line at the end says how many more were not kept). Lines are written under the claim in batches (every
/// <see cref="BatchSize"/> lines, and what is left when the run ends), so a job that logs nothing costs nothing. A
/// batch that cannot be written is dropped: the log is advisory, the run goes on.
/// </summary>
internal sealed class JobLogBuffer(Func<IReadOnlyList<JobLogLine>, CancellationToken, Task<bool>> write, int attempt, int maxLines, int maxBytes, TimeProvider time, ILogger? forward) : ILogger
{
    /// <summary>Lines per write while the run goes on.</summary>
    public const int BatchSize = 50;

    private readonly Lock _gate = new();
    private List<JobLogLine> _pending = [];
    private Task _flushing = Task.CompletedTask;
    private int _lines;
    private long _bytes;
    private int _dropped;
    private bool _closed;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull
        => forward?.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        forward?.Log(logLevel, eventId, state, exception, formatter);
        if (logLevel == LogLevel.None)
        {
            return;
        }

        var message = formatter(state, exception);
        if (exception is not null)
        {
            message += $" ({exception.GetType().FullName}: {exception.Message})";
        }

        var bytes = Encoding.UTF8.GetByteCount(message);
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            if (_lines >= maxLines || _bytes + bytes > maxBytes)
            {
                _dropped++;
                return;
            }

            _lines++;
            _bytes += bytes;
            _pending.Add(new JobLogLine(attempt, time.GetUtcNow(), logLevel.ToString(), message));
            if (_pending.Count >= BatchSize && _flushing.IsCompleted)
            {
                _flushing = Task.Run(() => FlushAsync(CancellationToken.None));
            }
        }
    }

    /// <summary>True when nothing was logged at all: closing it writes nothing (the common case, kept free).</summary>
    public bool IsUnused
    {
        get
        {
            lock (_gate)
            {
                return _lines == 0 && _dropped == 0;
            }
        }
    }

    /// <summary>The run ended: writes what is left (and how many lines were not kept) while the claim is still held.</summary>
    public async Task CloseAsync(CancellationToken cancellationToken)
    {
        Task flushing;
        lock (_gate)
        {
            _closed = true;
            flushing = _flushing;
            if (_dropped > 0)
            {
                _pending.Add(new JobLogLine(attempt, time.GetUtcNow(), nameof(LogLevel.Warning), $"{_dropped} more lines were not kept: at most {maxLines} lines and {maxBytes} bytes per attempt (Keel:MaxJobLogLines, Keel:MaxJobLogBytes)"));
            }
        }

        await flushing.ConfigureAwait(false);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        List<JobLogLine> batch;
        lock (_gate)
        {
            if (_pending.Count == 0)
            {
                return;
            }

            batch = _pending;
            _pending = [];
        }

        try
        {
            await write(batch, cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Advisory: a log batch that cannot be written must never fail the job.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
