using Keel.Storage;

namespace Keel.Tests.Unit;

/// <summary>The one map of states to where they are recorded: every state has exactly one home, and the SQL built from it names each.</summary>
public sealed class JobStatesTests
{
    [Fact]
    public void Every_state_has_exactly_one_home()
    {
        Assert.Equal(Enum.GetValues<JobState>().Order(), JobStates.All.Select(h => h.State).Order());
        Assert.All(Enum.GetValues<JobState>(), s => Assert.Equal(s, JobStates.Of(s).State));
        var tables = JobStates.All.Where(h => h.Table is not null).Select(h => h.Table).ToList();
        Assert.Equal(tables.Count, tables.Distinct().Count());
        Assert.All(JobStates.All, h => Assert.Equal(h.Table is null, h.Alias is null));
    }

    [Fact]
    public void The_state_is_decided_from_the_jobs_columns_first()
    {
        Assert.Equal([JobState.Finished, JobState.Discarded], JobStates.All.Take(2).Select(h => h.State));
        Assert.All(JobStates.All.Skip(2), h => Assert.NotNull(h.Table));
    }

    [Fact]
    public void Permits_are_held_while_ready_or_claimed_and_only_waiting_or_failed_jobs_are_discarded()
    {
        Assert.Equal([JobState.Ready, JobState.Claimed], JobStates.All.Where(h => h.HoldsPermit).Select(h => h.State).Order());
        Assert.Equal([JobState.Ready, JobState.Scheduled, JobState.Blocked, JobState.Failed, JobState.Awaiting], JobStates.Discardable.Select(h => h.State).Order());
        Assert.All(JobStates.Discardable, h => Assert.NotNull(h.Table));
        Assert.Equal(JobState.Failed, Assert.Single(JobStates.All, h => h.CarriesError).State);
    }

    [Fact]
    public void The_state_sql_names_every_state_and_table()
    {
        foreach (var home in JobStates.All)
        {
            Assert.Contains($"'{home.State}'", JobStates.StateOf, StringComparison.Ordinal);
            Assert.Contains($"'{home.State}'", JobStates.ListSelect(home.State), StringComparison.Ordinal);
            if (home.Table is not null)
            {
                Assert.Contains($"LEFT JOIN {home.Table} {home.Alias} ON {home.Alias}.job_id = j.id", JobStates.Joins, StringComparison.Ordinal);
                Assert.Contains(home.Table, JobStates.CountSelect, StringComparison.Ordinal);
                Assert.Contains($"FROM {home.Table} e", JobStates.ListSelect(home.State), StringComparison.Ordinal);
            }
        }

        Assert.Contains(JobStates.Joins, JobStates.ListSelect(null), StringComparison.Ordinal);
    }
}
