using Keel.Runtime;

namespace Keel.Tests.Unit;

/// <summary>
/// A suspect runs alone: it starts only once every other run's outcome is written, not when their code returned (a
/// completion still in flight holds its claim, and a death meanwhile would share it), and its isolation ends only when
/// its own outcome is written.
/// </summary>
public sealed class JobIsolationTests
{
    [Fact]
    public async Task A_suspect_waits_until_every_other_outcome_is_written_and_its_own_ends_the_isolation()
    {
        var isolation = new JobIsolation();
        isolation.RunStarted(1, suspect: false); // A neighbour: its code has returned, its completion is in flight.
        Assert.True(isolation.TryBegin());
        Assert.False(isolation.MayClaim);
        var idle = isolation.WhenIdleAsync();
        Assert.False(idle.IsCompleted);

        Assert.False(isolation.Settled(1)); // The neighbour's completion is written: the suspect may start.
        await idle.WaitAsync(TimeSpan.FromSeconds(5));

        isolation.RunStarted(2, suspect: true);
        Assert.False(isolation.MayClaim);
        Assert.False(isolation.Settled(99)); // Not a run of this host: nothing changes.
        Assert.False(isolation.MayClaim);
        Assert.True(isolation.Settled(2)); // The suspect's own outcome written: claiming resumes.
        Assert.True(isolation.MayClaim);
        Assert.Equal(0, isolation.Running);
    }
}
