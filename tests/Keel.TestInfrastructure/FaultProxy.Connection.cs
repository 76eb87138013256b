using System.Diagnostics;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Keel.TestInfrastructure;

/// <summary>One proxied connection: a client socket, its upstream socket and a pump in each direction.</summary>
public sealed partial class FaultProxy
{
    private const int ChunkSize = 16 * 1024;

    private sealed class Connection(FaultProxy proxy, Socket client)
    {
        private readonly CancellationTokenSource _abort = new();
        private readonly Lock _sockets = new();
        private Socket? _upstream;

        /// <summary>The local port of the connection to the target, once connected.</summary>
        public int? UpstreamLocalPort
        {
            get
            {
                lock (_sockets)
                {
                    try
                    {
                        return (_upstream?.LocalEndPoint as System.Net.IPEndPoint)?.Port;
                    }
                    catch (ObjectDisposedException)
                    {
                        return null;
                    }
                }
            }
        }
        private int _reset;

        public Task Completion { get; private set; } = Task.CompletedTask;

        public void Start() => Completion = Task.Run(RunAsync);

        /// <summary>Aborts both sides with a reset; safe to call at any time and more than once.</summary>
        public void Reset()
        {
            if (Interlocked.Exchange(ref _reset, 1) == 1)
            {
                return;
            }

            Interlocked.Increment(ref proxy._resets);
            Socket? upstream;
            lock (_sockets)
            {
                upstream = _upstream;
            }

            Abort(client);
            Abort(upstream);
            try
            {
                _abort.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        private async Task RunAsync()
        {
            var ct = _abort.Token;
            try
            {
                // A connection accepted inside a black hole is held here, never connected upstream.
                await proxy.WhileBlackHoledAsync(ct).ConfigureAwait(false);
                var (host, port) = proxy.Target;
                var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                lock (_sockets)
                {
                    _upstream = upstream;
                }

                if (Volatile.Read(ref _reset) == 1)
                {
                    Abort(upstream); // Reset raced with the assignment above.
                    return;
                }

                await upstream.ConnectAsync(host, port, ct).ConfigureAwait(false);
                await Task.WhenAll(PumpAsync(client, upstream, ct), PumpAsync(upstream, client, ct)).ConfigureAwait(false);

                // Both directions ended in order (FIN each way): close without a reset.
                client.Dispose();
                upstream.Dispose();
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException or ChannelClosedException)
            {
                // One side reset, the target refused, or the proxy reset us: the other side learns it the same way.
                Reset();
            }
            finally
            {
                Interlocked.Exchange(ref _reset, 1); // Ended: a later ResetAll has nothing left to reset here.
                proxy.Remove(this);
                _abort.Dispose();
            }
        }

        /// <summary>
        /// Forwards <paramref name="from"/> to <paramref name="to"/>: a reader that stops reading during a black
        /// hole (bytes wait in the kernel) and a writer that holds each chunk until its latency has passed and no
        /// black hole is on. An orderly end (FIN) is passed on once everything before it was written.
        /// </summary>
        private async Task PumpAsync(Socket from, Socket to, CancellationToken ct)
        {
            var chunks = Channel.CreateBounded<(byte[] Bytes, int Count, long Due)>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });
            var reader = ReadAsync(from, chunks.Writer, ct);
            try
            {
                await foreach (var (bytes, count, due) in chunks.Reader.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    await proxy.WaitUntilAsync(due, ct).ConfigureAwait(false);

                    await proxy.WhileBlackHoledAsync(ct).ConfigureAwait(false);
                    var sent = 0;
                    while (sent < count)
                    {
                        sent += await to.SendAsync(bytes.AsMemory(sent, count - sent), SocketFlags.None, ct).ConfigureAwait(false);
                    }
                }
            }
            catch
            {
                Reset(); // Wakes the reader, which may be waiting for bytes that will never come.
                throw;
            }
            finally
            {
                await reader.ConfigureAwait(false);
            }

            to.Shutdown(SocketShutdown.Send);
        }

        private async Task ReadAsync(Socket from, ChannelWriter<(byte[] Bytes, int Count, long Due)> chunks, CancellationToken ct)
        {
            Exception? failure = null;
            try
            {
                while (true)
                {
                    await proxy.WhileBlackHoledAsync(ct).ConfigureAwait(false);
                    var buffer = new byte[ChunkSize];
                    var read = await from.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
                    if (read == 0)
                    {
                        return;
                    }

                    var due = Now() + (long)(proxy.Latency.TotalSeconds * Stopwatch.Frequency);
                    await chunks.WriteAsync((buffer, read, due), ct).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException or ChannelClosedException)
            {
                failure = e;
                Reset();
            }
            finally
            {
                chunks.TryComplete(failure);
            }
        }
    }
}
