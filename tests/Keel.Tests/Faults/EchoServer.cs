using System.Net;
using System.Net.Sockets;

namespace Keel.Tests.Faults;

/// <summary>A TCP echo server on 127.0.0.1 for the proxy's own tests: counts what it accepted and the resets it saw.</summary>
public sealed class EchoServer : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _clients = [];
    private readonly Task _accepting;
    private int _accepted;
    private int _resets;

    public EchoServer()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections whose client side was reset (ECONNRESET) rather than closed in order.</summary>
    public int Resets => Volatile.Read(ref _resets);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        Task[] clients;
        lock (_clients)
        {
            clients = [.. _clients];
        }

        await Task.WhenAll(clients).WaitAsync(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            lock (_clients)
            {
                _clients.Add(EchoAsync(client));
            }
        }
    }

    private async Task EchoAsync(Socket client)
    {
        using var _ = client;
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var read = await client.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                if (read == 0)
                {
                    client.Shutdown(SocketShutdown.Send);
                    return;
                }

                await client.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            Interlocked.Increment(ref _resets);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }
}
