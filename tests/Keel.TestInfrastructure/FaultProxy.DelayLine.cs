using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Keel.TestInfrastructure;

/// <summary>The timer that holds delayed chunks: one thread per proxy, precise below a millisecond.</summary>
public sealed partial class FaultProxy
{
    private readonly Lock _delayLineGate = new();
    private DelayLine? _delayLine;

    /// <summary>Completes when the Stopwatch timestamp <paramref name="due"/> has passed.</summary>
    private Task WaitUntilAsync(long due, CancellationToken ct)
    {
        if (Now() >= due)
        {
            return Task.CompletedTask;
        }

        DelayLine line;
        lock (_delayLineGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            line = _delayLine ??= new DelayLine();
        }

        return line.WaitUntilAsync(due, ct);
    }

    private void StopDelayLine()
    {
        lock (_delayLineGate)
        {
            _delayLine?.Dispose();
        }
    }

    /// <summary>
    /// Releases waiters at their due time with sub-millisecond precision. <see cref="Task.Delay(TimeSpan)"/> counts
    /// whole milliseconds (a 0.25 ms delay is no delay at all, 1.5 ms is 1 ms plus the timer's slack), which would
    /// make an emulated round trip of 0.5 or 2 ms wrong by up to 100 %. The thread sleeps on an event until a
    /// millisecond before the earliest due time, then in short <c>usleep</c>s, so it spins nothing.
    /// </summary>
    private sealed class DelayLine : IDisposable
    {
        private static readonly long Millisecond = Stopwatch.Frequency / 1_000;

        private readonly Lock _gate = new();
        private readonly PriorityQueue<TaskCompletionSource, long> _waiting = new();
        private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
        private readonly Thread _thread;
        private volatile bool _stopped;

        public DelayLine()
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "FaultProxy delay line" };
            _thread.Start();
        }

        public Task WaitUntilAsync(long due, CancellationToken ct)
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (_stopped)
                {
                    waiter.SetCanceled(CancellationToken.None);
                    return waiter.Task;
                }

                _waiting.Enqueue(waiter, due);
            }

            _wake.Set();
            return waiter.Task.WaitAsync(ct);
        }

        public void Dispose()
        {
            _stopped = true;
            _wake.Set();
            _thread.Join();
            lock (_gate)
            {
                while (_waiting.TryDequeue(out var waiter, out _))
                {
                    waiter.TrySetCanceled();
                }
            }

            _wake.Dispose();
        }

        private void Run()
        {
            while (!_stopped)
            {
                _wake.Reset(); // before looking at the queue, so that a waiter added after the look sets it again
                long? next = null;
                lock (_gate)
                {
                    var now = Now();
                    while (_waiting.TryPeek(out var waiter, out var due))
                    {
                        if (due > now)
                        {
                            next = due;
                            break;
                        }

                        _waiting.Dequeue();
                        waiter.TrySetResult();
                    }
                }

                if (next is not { } earliest)
                {
                    _wake.Wait();
                    continue;
                }

                var remaining = earliest - Now();
                if (remaining > 2 * Millisecond)
                {
                    // Coarse wait, woken early by a new waiter (which may be due sooner after a change of Latency).
                    _wake.Wait((int)((remaining - Millisecond) / Millisecond));
                }
                else if (remaining > 0)
                {
                    _ = USleep((uint)Math.Clamp(remaining * 1_000_000 / Stopwatch.Frequency, 1, 200));
                }
            }
        }

        [DllImport("libc", EntryPoint = "usleep")]
        private static extern int USleep(uint microseconds);
    }
}
