namespace Keel.Runtime;

/// <summary>
/// One run's progress reports, coalesced: the first is written at once, later ones at most once per interval (the
/// latest value wins, written by a flush when the interval has passed), so a job that reports in a tight loop costs
/// its database at most one write per interval. Progress is advisory: a write that fails or finds the claim gone is
/// dropped; the run goes on.
/// </summary>
internal sealed class ProgressReporter(Func<double, string?, CancellationToken, Task<bool>> write, TimeProvider time, TimeSpan interval) : IDisposable
{
    private readonly Lock _gate = new();
    private volatile bool _stopped;
    private (double Fraction, string? Message)? _pending;
    private long? _lastWrite;
    private bool _writing;
    private bool _flushScheduled;

    /// <summary>How many writes were made (for tests and the bench).</summary>
    public int Writes => Volatile.Read(ref _writes);

    private int _writes;

    public async Task ReportAsync(double fraction, string? message, CancellationToken cancellationToken)
    {
        bool writeNow;
        lock (_gate)
        {
            if (_stopped)
            {
                return;
            }

            _pending = (fraction, message);
            writeNow = !_writing && (_lastWrite is not { } last || time.GetElapsedTime(last) >= interval);
            if (writeNow)
            {
                _writing = true;
                _lastWrite = time.GetTimestamp();
            }
            else if (!_writing)
            {
                ScheduleFlushLocked();
            }
        }

        if (writeNow)
        {
            await WriteAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Stops: a report still waiting for its interval is dropped (the claim ends with the run anyway), and so is any
    /// report made later by a run that was abandoned.
    /// </summary>
    public void Dispose() => _stopped = true; // Nothing to free: every run has one, so it holds no timer or token source.

    private async Task WriteAsync(CancellationToken cancellationToken)
    {
        (double Fraction, string? Message) value;
        lock (_gate)
        {
            value = _pending!.Value;
            _pending = null;
        }

        try
        {
            Interlocked.Increment(ref _writes);
            await write(value.Fraction, value.Message, cancellationToken).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Advisory: a lost progress report must never fail the job.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            lock (_gate)
            {
                _writing = false;
                if (_pending is not null)
                {
                    ScheduleFlushLocked();
                }
            }
        }
    }

    private void ScheduleFlushLocked()
    {
        if (_flushScheduled || _stopped)
        {
            return;
        }

        _flushScheduled = true;
        var wait = _lastWrite is { } last ? interval - time.GetElapsedTime(last) : TimeSpan.Zero;
        _ = Task.Run(
            async () =>
            {
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, time).ConfigureAwait(false);
                }

                lock (_gate)
                {
                    _flushScheduled = false;
                    if (_pending is null || _writing || _stopped)
                    {
                        return;
                    }

                    _writing = true;
                    _lastWrite = time.GetTimestamp();
                }

                await WriteAsync(CancellationToken.None).ConfigureAwait(false);
            },
            CancellationToken.None);
    }
}
