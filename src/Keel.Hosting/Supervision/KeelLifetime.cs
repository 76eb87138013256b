using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;

namespace Keel.Hosting.Supervision;

/// <summary>
/// Process mode's host lifetime: SIGTERM and SIGINT stop gracefully. Unlike the default console lifetime it leaves
/// SIGQUIT alone, because in process mode SIGQUIT means "exit at once" and is handled by <c>KeelApp</c> (Keel.Cli).
/// </summary>
internal sealed class KeelLifetime(IHostApplicationLifetime lifetime) : IHostLifetime, IDisposable
{
    private PosixSignalRegistration? _interrupt;
    private PosixSignalRegistration? _terminate;

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        _interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        _terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _interrupt?.Dispose();
        _terminate?.Dispose();
    }

    private void Stop(PosixSignalContext context)
    {
        context.Cancel = true;
        lifetime.StopApplication();
    }
}
