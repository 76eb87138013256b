using Keel.Storage;
using Keel.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Keel.Tests.EndToEnd;

/// <summary>Arguments have a size limit (Keel:MaxArgumentsBytes, 1 MiB by default): a larger enqueue is refused, clearly.</summary>
public sealed class ArgumentsLimitTests
{
    [Fact]
    public async Task Ten_megabytes_of_arguments_are_refused_at_enqueue_naming_the_kind_the_size_and_the_limit()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        using var host = KeelHost.Build(db, new Recorder(), o => o.ProcessJobs = false);
        var client = host.Services.GetRequiredService<IKeelClient>();
        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1, new string('x', 10_000_000))));
        Assert.StartsWith("the arguments of job kind 'count' are 10,000,018 bytes of JSON, over the limit of 1,048,576 bytes (Keel:MaxArgumentsBytes)", error.Message, StringComparison.Ordinal);
        Assert.Empty(await db.Storage.JobsListAsync(new JobsListParams(null, null, null, null, null, 10), default));

        // Just under the limit is fine.
        var id = await client.EnqueueAsync<CountingJob, CountArgs>(new CountArgs(1, new string('x', 1_000_000)));
        Assert.Equal(JobState.Ready, (await db.Storage.JobGetAsync(id, default))!.State);
    }

    [Fact]
    public async Task The_limit_is_configurable_counts_utf8_bytes_and_refuses_a_bulk_enqueue_as_a_whole()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.Sqlite);
        using var host = KeelHost.Build(db, new Recorder(), o =>
        {
            o.ProcessJobs = false;
            o.MaxArgumentsBytes = 2048;
        });
        var client = host.Services.GetRequiredService<IKeelClient>();
        // 700 characters of three bytes each: 2,100 bytes of UTF-8 in 700 UTF-16 units.
        var error = await Assert.ThrowsAsync<ArgumentException>(() => client.EnqueueManyAsync(
        [
            JobRequest.Create<CountingJob, CountArgs>(new CountArgs(1, "small")),
            JobRequest.Create<CountingJob, CountArgs>(new CountArgs(2, new string('€', 700))),
        ]));
        Assert.Contains("over the limit of 2,048 bytes (Keel:MaxArgumentsBytes)", error.Message, StringComparison.Ordinal);
        Assert.Empty(await db.Storage.JobsListAsync(new JobsListParams(null, null, null, null, null, 10), default));
    }

    [Fact]
    public void A_limit_below_a_kilobyte_is_refused_naming_the_key()
    {
        var result = new KeelOptionsValidator().Validate(null, new KeelOptions { MaxArgumentsBytes = 10 });
        Assert.Contains("Keel:MaxArgumentsBytes must be at least 1024 (was 10)", result.FailureMessage, StringComparison.Ordinal);
    }
}
