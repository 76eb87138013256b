using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;

namespace Keel.Tests.Faults;

/// <summary>The fault proxy on its own, with an echo server behind it.</summary>
public sealed class FaultProxyTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    private readonly List<Socket> _clients = [];
    private EchoServer _echo = null!;
    private FaultProxy _proxy = null!;

    private enum Outcome
    {
        Data,
        Closed,
        Reset,
        Nothing,
    }

    public Task InitializeAsync()
    {
        _echo = new EchoServer();
        _proxy = FaultProxy.Start(_echo.Port);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        await _proxy.DisposeAsync();
        await _echo.DisposeAsync();
    }

    [Fact]
    public async Task Bytes_go_through_both_ways_and_the_counters_follow_the_connections()
    {
        var client = await ConnectAsync();
        Assert.Equal("hello", await RoundTripAsync(client, "hello"));
        Assert.Equal((1, 1L, 1), (_proxy.ActiveConnections, _proxy.TotalAccepted, _echo.Accepted));

        client.Shutdown(SocketShutdown.Send);
        Assert.Equal(Outcome.Closed, (await ReadAsync(client, Patience)).Outcome); // the echo server's FIN came back through
        await Eventually.WaitUntilAsync(() => Task.FromResult(_proxy.ActiveConnections == 0), Patience, "the closed connection leaves the proxy");
        Assert.Equal((0L, 0), (_proxy.TotalResets, _echo.Resets));
    }

    [Fact]
    public async Task ResetAll_aborts_every_connection_with_a_reset_on_both_sides_and_new_ones_work()
    {
        var first = await ConnectAsync();
        var second = await ConnectAsync();
        Assert.Equal("a", await RoundTripAsync(first, "a"));
        Assert.Equal("b", await RoundTripAsync(second, "b"));

        Assert.Equal(2, _proxy.ResetAll());

        Assert.Equal(Outcome.Reset, (await ReadAsync(first, Patience)).Outcome);
        Assert.Equal(Outcome.Reset, (await ReadAsync(second, Patience)).Outcome);
        await Eventually.WaitUntilAsync(() => Task.FromResult(_echo.Resets == 2), Patience, "the server side sees both resets");

        // A reset connection leaves the proxy's set when its pumps end, which may be after both peers saw the reset.
        await Eventually.WaitUntilAsync(() => Task.FromResult(_proxy.ActiveConnections == 0), Patience, "the reset connections leave the proxy");
        Assert.Equal("again", await RoundTripAsync(await ConnectAsync(), "again"));
    }

    [Fact]
    public async Task A_black_hole_forwards_nothing_closes_nothing_and_holds_new_connections_until_it_ends_with_a_reset()
    {
        var open = await ConnectAsync();
        Assert.Equal("before", await RoundTripAsync(open, "before"));

        _proxy.BlackHole(true);
        await SendAsync(open, "lost");
        var held = await ConnectAsync(); // accepted by the proxy, never connected upstream
        await SendAsync(held, "held");

        Assert.Equal(Outcome.Nothing, (await ReadAsync(open, Quiet)).Outcome);
        Assert.Equal(Outcome.Nothing, (await ReadAsync(held, Quiet)).Outcome);
        Assert.True(_proxy.IsBlackHoled);
        Assert.Equal((2, 1), (_proxy.ActiveConnections, _echo.Accepted));

        _proxy.BlackHole(false);
        Assert.Equal(Outcome.Reset, (await ReadAsync(open, Patience)).Outcome);
        Assert.Equal(Outcome.Reset, (await ReadAsync(held, Patience)).Outcome);
        Assert.Equal("after", await RoundTripAsync(await ConnectAsync(), "after"));
        Assert.Equal(2, _echo.Accepted);
    }

    [Fact]
    public async Task With_ResumeAfterBlackHole_what_a_black_hole_held_is_delivered_when_it_ends()
    {
        _proxy.ResumeAfterBlackHole = true;
        var open = await ConnectAsync();
        Assert.Equal("before", await RoundTripAsync(open, "before"));

        _proxy.BlackHole(true);
        await SendAsync(open, "kept");
        var held = await ConnectAsync();
        await SendAsync(held, "waited");
        Assert.Equal(Outcome.Nothing, (await ReadAsync(open, Quiet)).Outcome);

        _proxy.BlackHole(false);
        Assert.Equal("kept", await ReadExactlyAsync(open, 4));
        Assert.Equal("waited", await ReadExactlyAsync(held, 6));
        Assert.Equal(0L, _proxy.TotalResets);
    }

    [Fact]
    public async Task Latency_delays_each_direction_and_keeps_the_order_of_the_bytes()
    {
        var client = await ConnectAsync();
        Assert.Equal("warm", await RoundTripAsync(client, "warm"));
        _proxy.Latency = TimeSpan.FromMilliseconds(100);

        var watch = Stopwatch.StartNew();
        Assert.Equal("ping", await RoundTripAsync(client, "ping"));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(190), $"a round trip took {watch.Elapsed.TotalMilliseconds:0} ms through 100 ms of latency each way");

        _proxy.Latency = TimeSpan.FromMilliseconds(2);
        var expected = new StringBuilder();
        for (var i = 0; i < 300; i++)
        {
            var piece = i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture) + ";";
            expected.Append(piece);
            await SendAsync(client, piece);
        }

        Assert.Equal(expected.ToString(), await ReadExactlyAsync(client, expected.Length));
    }

    [Fact]
    public async Task Latency_below_a_millisecond_is_added_to_every_round_trip_not_rounded_away()
    {
        var client = await ConnectAsync();
        Assert.Equal("warm", await RoundTripAsync(client, "warm"));
        _proxy.Latency = TimeSpan.FromMilliseconds(0.25);

        // 40 round trips through 0.25 ms each way cannot take less than 20 ms (a timer counting whole milliseconds
        // would add nothing); the load of the machine can only make them slower.
        const int roundTrips = 40;
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < roundTrips; i++)
        {
            Assert.Equal("p" + i, await RoundTripAsync(client, "p" + i));
        }

        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(roundTrips * 0.5), $"{roundTrips} round trips took {watch.Elapsed.TotalMilliseconds:0.0} ms through 0.25 ms of latency each way");
    }

    [Fact]
    public async Task Refuse_resets_new_connections_at_once_and_leaves_open_ones_alone()
    {
        var open = await ConnectAsync();
        Assert.Equal("x", await RoundTripAsync(open, "x"));

        _proxy.Refuse(true);
        Outcome outcome;
        try
        {
            outcome = (await ReadAsync(await ConnectAsync(), Patience)).Outcome;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            outcome = Outcome.Reset; // The reset can beat the end of the connect on loopback.
        }

        Assert.True(outcome is Outcome.Reset or Outcome.Closed, $"a refused connection read {outcome}");
        Assert.Equal((1L, 1), (_proxy.TotalRefused, _echo.Accepted));
        Assert.Equal("still", await RoundTripAsync(open, "still"));

        _proxy.Refuse(false);
        Assert.Equal("back", await RoundTripAsync(await ConnectAsync(), "back"));
    }

    [Fact]
    public async Task Retarget_sends_new_connections_to_the_new_target_and_leaves_open_ones_where_they_are()
    {
        await using var other = new EchoServer();
        var old = await ConnectAsync();
        Assert.Equal("1", await RoundTripAsync(old, "1"));

        _proxy.Retarget(other.Port);
        Assert.Equal("2", await RoundTripAsync(await ConnectAsync(), "2"));
        Assert.Equal("3", await RoundTripAsync(old, "3"));
        Assert.Equal((1, 1), (_echo.Accepted, other.Accepted));
        Assert.Equal(("127.0.0.1", other.Port), _proxy.Target);
    }

    [Fact]
    public async Task Dispose_stops_listening_and_resets_every_connection()
    {
        var open = await ConnectAsync();
        Assert.Equal("x", await RoundTripAsync(open, "x"));
        _proxy.BlackHole(true);
        var held = await ConnectAsync();

        await _proxy.DisposeAsync();

        Assert.Equal(Outcome.Reset, (await ReadAsync(open, Patience)).Outcome);
        Assert.Equal(Outcome.Reset, (await ReadAsync(held, Patience)).Outcome);
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync("127.0.0.1", _proxy.Port));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _clients.Add(socket);
        await socket.ConnectAsync("127.0.0.1", _proxy.Port);
        return socket;
    }

    private static async Task SendAsync(Socket socket, string text) => await socket.SendAsync(Encoding.ASCII.GetBytes(text), SocketFlags.None);

    private static async Task<string> RoundTripAsync(Socket socket, string text)
    {
        await SendAsync(socket, text);
        return await ReadExactlyAsync(socket, text.Length);
    }

    private static async Task<string> ReadExactlyAsync(Socket socket, int length)
    {
        var buffer = new byte[length];
        using var timeout = new CancellationTokenSource(Patience);
        var read = 0;
        while (read < length)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
            Assert.True(n > 0, $"the connection closed after {read} of {length} bytes");
            read += n;
        }

        return Encoding.ASCII.GetString(buffer);
    }

    /// <summary>What one read sees within <paramref name="wait"/>: bytes, an orderly close, a reset, or nothing at all.</summary>
    private static async Task<(Outcome Outcome, string Text)> ReadAsync(Socket socket, TimeSpan wait)
    {
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            return n == 0 ? (Outcome.Closed, string.Empty) : (Outcome.Data, Encoding.ASCII.GetString(buffer, 0, n));
        }
        catch (OperationCanceledException)
        {
            return (Outcome.Nothing, string.Empty);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return (Outcome.Reset, string.Empty);
        }
    }
}
