using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Keel.Tests.Faults;

/// <summary>
/// The network faults every server engine goes through, written once: a <c>target</c> app reaches the database
/// through a <see cref="FaultProxy"/> (<paramref name="via"/> names the database through it), an <c>observer</c>
/// reaches it directly.
/// </summary>
internal static class NetworkFaultCases
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(20);

    /// <summary>Three rounds of <see cref="FaultProxy.ResetAll"/>, a second apart, under load: nobody pruned, nothing run twice.</summary>
    public static async Task ResetsAsync(ITestOutputHelper output, TestDatabase db, int serverPort, Func<FaultProxy, string> via, string observer)
    {
        await using var proxy = FaultProxy.Start(serverPort);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, via(proxy)), ("observer", 1, 2, observer));
        var limited = await PostgreSqlFaultTests.StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        for (var round = 0; round < 3; round++)
        {
            scene.Note($"FaultProxy.ResetAll: {proxy.ResetAll()} connections of the target reset");
            await Task.Delay(1000);
        }

        await PostgreSqlFaultTests.FinishAsync(scene, before, limited);
    }

    /// <summary>
    /// The target's one worker runs a long job and is black-holed for 4 s (past its 1.2 s lease): it must have cancelled
    /// the job before the observer could take it over.
    /// </summary>
    public static async Task BlackHoleAsync(ITestOutputHelper output, TestDatabase db, int serverPort, Func<FaultProxy, string> via, string observer)
    {
        await using var proxy = FaultProxy.Start(serverPort);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 1, 1, via(proxy)));
        var job = (await scene.InsertAsync(1, 8000))[0]; // outlasts the black hole: only a cancellation ends it in time
        var pid = await scene.RunningPidAsync(job);
        scene.Note($"job {job} runs on the target's worker, pid {pid}");
        await scene.StartAsync(("observer", 1, 1, observer));
        var before = await scene.SnapshotAsync();

        proxy.BlackHole(true);
        var holeStart = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        scene.Note("black hole on: the target's packets are lost, nothing is closed");
        await Task.Delay(TimeSpan.FromSeconds(4)); // past the 1.2 s lease: the observer may take the job over
        var holeEnd = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        proxy.BlackHole(false);
        scene.Note("black hole off: the held connections are reset");

        await scene.DrainAsync(Drain);
        scene.CheckStoppedBefore(holeStart, holeEnd, ["target"], "the black hole ended, more than three leases after it began (the observer could take over long before)");
        await scene.CheckAsync(before, prunable: ["target"]);
        await scene.StopAppsAsync();
        scene.AssertNoViolations();
    }
}
