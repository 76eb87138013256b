using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Keel.TestInfrastructure;

/// <summary>
/// An in-process TCP proxy on 127.0.0.1 (a free port) in front of one target, which injects the network faults
/// production has: connections reset by a restarting proxy or NAT (<see cref="ResetAll"/>), a partition that loses
/// every packet without closing anything (<see cref="BlackHole"/>), network delay (<see cref="Latency"/>), an
/// unreachable server (<see cref="Refuse"/>), and a virtual address moving to another server
/// (<see cref="Retarget"/>). Every control is safe to call from any thread at any time.
/// </summary>
public sealed partial class FaultProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly HashSet<Connection> _connections = [];
    private readonly Task _acceptLoop;
    private volatile TaskCompletionSource _open;
    private volatile bool _blackHoled;
    private volatile bool _refusing;
    private volatile bool _disposed;
    private (string Host, int Port) _target;
    private long _latencyTicks;
    private long _accepted;
    private long _refused;
    private long _resets;

    private FaultProxy(string targetHost, int targetPort)
    {
        _target = (targetHost, targetPort);
        _open = Opened();
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(512);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }

        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>The address the proxy listens on: always <c>127.0.0.1</c>.</summary>
    public string Host => "127.0.0.1";

    /// <summary>The port the proxy listens on.</summary>
    public int Port { get; }

    /// <summary>Where new connections are forwarded (see <see cref="Retarget"/>).</summary>
    public (string Host, int Port) Target
    {
        get
        {
            lock (_gate)
            {
                return _target;
            }
        }
    }

    /// <summary>
    /// One-way delay added in each direction to every chunk forwarded (a round trip gains twice this), keeping the
    /// order of the bytes; a chunk already on its way keeps the delay it was read with. Chunks are pipelined: a fixed
    /// delay, not a limit on bytes in flight, as a real network's propagation delay. Precise below a millisecond (a
    /// timer thread of the proxy's own, started at the first delayed chunk). Zero by default.
    /// </summary>
    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
            Interlocked.Exchange(ref _latencyTicks, value.Ticks);
        }
    }

    /// <summary>
    /// What ending a black hole does to the connections it held: false (the default) resets them, as a NAT or
    /// firewall that forgot them during the partition would, and clients reconnect; true delivers what they held
    /// and lets them go on, as TCP does when a partition heals before its retransmissions give up.
    /// </summary>
    public bool ResumeAfterBlackHole { get; set; }

    /// <summary>True while <see cref="BlackHole"/> is on.</summary>
    public bool IsBlackHoled => _blackHoled;

    /// <summary>True while <see cref="Refuse"/> is on.</summary>
    public bool IsRefusing => _refusing;

    /// <summary>Connections currently open through the proxy (held ones included).</summary>
    public int ActiveConnections
    {
        get
        {
            lock (_gate)
            {
                return _connections.Count;
            }
        }
    }

    /// <summary>
    /// The local ports of the proxy's open connections to the target: how the server sees the clients that came through
    /// the proxy (a test can pick out their sessions, e.g. to end them from the server side).
    /// </summary>
    /// <returns>The ports.</returns>
    public IReadOnlySet<int> UpstreamLocalPorts()
    {
        lock (_gate)
        {
            return _connections.Select(c => c.UpstreamLocalPort).OfType<int>().ToHashSet();
        }
    }

    /// <summary>Connections accepted and proxied (or held) since the start; refused ones are not counted.</summary>
    public long TotalAccepted => Interlocked.Read(ref _accepted);

    /// <summary>Connections refused by <see cref="Refuse"/> since the start.</summary>
    public long TotalRefused => Interlocked.Read(ref _refused);

    /// <summary>Connections aborted with a reset: by <see cref="ResetAll"/>, by the end of a black hole, or because one side reset or the target was unreachable.</summary>
    public long TotalResets => Interlocked.Read(ref _resets);

    /// <summary>Starts a proxy on a free port of 127.0.0.1 forwarding to <paramref name="targetHost"/>:<paramref name="targetPort"/>.</summary>
    /// <param name="targetHost">The host to forward to.</param>
    /// <param name="targetPort">The port to forward to.</param>
    /// <returns>The listening proxy.</returns>
    public static FaultProxy Start(string targetHost, int targetPort)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetHost);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(targetPort);
        return new FaultProxy(targetHost, targetPort);
    }

    /// <summary>Starts a proxy on a free port of 127.0.0.1 forwarding to 127.0.0.1:<paramref name="targetPort"/>.</summary>
    /// <param name="targetPort">The port to forward to.</param>
    /// <returns>The listening proxy.</returns>
    public static FaultProxy Start(int targetPort) => Start("127.0.0.1", targetPort);

    /// <summary>
    /// Aborts every current connection with a TCP RST on both sides (linger 0, then close), as a restarting proxy or
    /// NAT does. New connections keep working.
    /// </summary>
    /// <returns>How many connections were reset.</returns>
    public int ResetAll()
    {
        Connection[] current;
        lock (_gate)
        {
            current = [.. _connections];
        }

        foreach (var connection in current)
        {
            connection.Reset();
        }

        return current.Length;
    }

    /// <summary>
    /// On: every byte in both directions stops (nothing is forwarded, nothing is closed: no FIN, no RST), and new
    /// connections are accepted but never connected to the target, so clients hang until their own timeouts. Off:
    /// new connections work again, and the held ones are reset (or resumed: <see cref="ResumeAfterBlackHole"/>).
    /// </summary>
    /// <param name="on">True to start the black hole, false to end it.</param>
    public void BlackHole(bool on)
    {
        TaskCompletionSource? heal = null;
        Connection[] held = [];
        lock (_gate)
        {
            if (on && !_blackHoled)
            {
                _blackHoled = true;
                _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            else if (!on && _blackHoled)
            {
                _blackHoled = false;
                heal = _open;
                _open = Opened();
                held = ResumeAfterBlackHole ? [] : [.. _connections];
            }
        }

        // Reset before releasing the gate, so that nothing a held connection read is forwarded.
        foreach (var connection in held)
        {
            connection.Reset();
        }

        heal?.TrySetResult();
    }

    /// <summary>
    /// On: every new connection is closed with a reset the moment it is accepted, as from a server that is not
    /// there (clients fail at once instead of hanging). Connections already open are not touched. Off: new
    /// connections are forwarded again.
    /// </summary>
    /// <param name="on">True to refuse, false to forward.</param>
    public void Refuse(bool on) => _refusing = on;

    /// <summary>
    /// Forwards new connections to <paramref name="host"/>:<paramref name="port"/> from now on, as a virtual IP or
    /// DNS name moving to a promoted standby. Open connections stay where they are (reset them with <see cref="ResetAll"/>).
    /// </summary>
    /// <param name="host">The new target host.</param>
    /// <param name="port">The new target port.</param>
    public void Retarget(string host, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(port);
        lock (_gate)
        {
            _target = (host, port);
        }
    }

    /// <summary>Forwards new connections to 127.0.0.1:<paramref name="port"/> from now on (see <see cref="Retarget(string, int)"/>).</summary>
    /// <param name="port">The new target port.</param>
    public void Retarget(int port) => Retarget("127.0.0.1", port);

    /// <summary>Stops listening and resets every connection.</summary>
    /// <returns>A task completing once every connection's work has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        Task[] running;
        lock (_gate)
        {
            running = [.. _connections.Select(c => c.Completion)];
        }

        ResetAll();
        _open.TrySetResult();
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        StopDelayLine();
        _stop.Dispose();
    }

    private static TaskCompletionSource Opened()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    /// <summary>Completes at once unless a black hole is on; then when it ends.</summary>
    private Task WhileBlackHoledAsync(CancellationToken ct)
    {
        var open = _open.Task;
        return open.IsCompleted ? Task.CompletedTask : open.WaitAsync(ct);
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || (e is SocketException && _stop.IsCancellationRequested))
            {
                return;
            }
            catch (SocketException)
            {
                continue; // The client gave up before we accepted it.
            }

            if (_refusing)
            {
                Interlocked.Increment(ref _refused);
                Abort(client);
                continue;
            }

            client.NoDelay = true;
            var connection = new Connection(this, client);
            lock (_gate)
            {
                if (_disposed)
                {
                    Abort(client);
                    return;
                }

                _connections.Add(connection);
            }

            Interlocked.Increment(ref _accepted);
            connection.Start();
        }
    }

    private void Remove(Connection connection)
    {
        lock (_gate)
        {
            _connections.Remove(connection);
        }
    }

    /// <summary>Closes a socket with a reset (SO_LINGER 0): the peer reads ECONNRESET, not an orderly end.</summary>
    private static void Abort(Socket? socket)
    {
        if (socket is null)
        {
            return;
        }

        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    private static long Now() => Stopwatch.GetTimestamp();
}
