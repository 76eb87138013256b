using System.Collections.Concurrent;

namespace Keel.Testing.Tests;

/// <summary>What the test jobs did, by key: the side effects a test checks.</summary>
public sealed class Ledger
{
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.Ordinal);

    public int Count(string key) => _counts.GetValueOrDefault(key);

    public int Add(string key) => _counts.AddOrUpdate(key, 1, (_, n) => n + 1);
}

public sealed record WorkArgs(string Key);

/// <summary>Counts each run in the ledger.</summary>
[Job("test.count")]
public sealed class CountJob(Ledger ledger) : IJob<WorkArgs>
{
    public Task PerformAsync(WorkArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ledger.Add(args.Key);
        return Task.CompletedTask;
    }
}

public sealed record FlakyArgs(string Key, int Failures);

/// <summary>Throws on its first <see cref="FlakyArgs.Failures"/> runs, then succeeds.</summary>
[Job("test.flaky", MaxAttempts = 3)]
public sealed class FlakyJob(Ledger ledger) : IJob<FlakyArgs>
{
    public Task PerformAsync(FlakyArgs args, JobContext context, CancellationToken cancellationToken)
        => ledger.Add(args.Key) <= args.Failures ? throw new InvalidOperationException($"flaky run {context.Attempt}") : Task.CompletedTask;
}

/// <summary>Counts its run and enqueues a <see cref="CountJob"/> with the same key.</summary>
[Job("test.chain")]
public sealed class ChainJob(Ledger ledger, IKeelClient keel) : IJob<WorkArgs>
{
    public async Task PerformAsync(WorkArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ledger.Add("chain:" + args.Key);
        await keel.EnqueueAsync<CountJob, WorkArgs>(args, cancellationToken: cancellationToken);
    }
}

/// <summary>The same as <see cref="CountJob"/> with the Fail worker-lost policy (registered with it by the tests).</summary>
[Job("test.count-fragile")]
public sealed class FragileCountJob(Ledger ledger) : IJob<WorkArgs>
{
    public Task PerformAsync(WorkArgs args, JobContext context, CancellationToken cancellationToken)
    {
        ledger.Add(args.Key);
        return Task.CompletedTask;
    }
}

/// <summary>A fake payment gateway: counts charges, and can run something once right after a charge (a worker's death).</summary>
public sealed class FakeGateway
{
    private int _charges;

    public int Charges => _charges;

    public Action? AfterNextCharge { get; set; }

    public void Charge()
    {
        Interlocked.Increment(ref _charges);
        var after = AfterNextCharge;
        AfterNextCharge = null;
        after?.Invoke();
    }
}

/// <summary>Charges, then records that it got past the charge.</summary>
[Job("test.pay")]
public sealed class PayJob(FakeGateway gateway, Ledger ledger) : IJob<WorkArgs>
{
    public Task PerformAsync(WorkArgs args, JobContext context, CancellationToken cancellationToken)
    {
        gateway.Charge();
        ledger.Add("after-charge:" + args.Key);
        return Task.CompletedTask;
    }
}
