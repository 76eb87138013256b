namespace Keel.Sample;

public sealed record WelcomeArgs(string Email);

/// <summary>A quick job.</summary>
[Job("emails.welcome", Queue = "mail")]
public sealed class SendWelcomeEmail : IJob<WelcomeArgs>
{
    public async Task PerformAsync(WelcomeArgs args, JobContext context, CancellationToken cancellationToken)
    {
        await Task.Delay(50, cancellationToken);
        Console.WriteLine($"  job {context.JobId,3}  welcome email sent to {args.Email}");
    }
}

public sealed record ReportArgs(string Name, int Seconds);

/// <summary>A slow job on its own queue.</summary>
[Job("reports.generate", Queue = "reports", Priority = 10)]
public sealed class GenerateReport : IJob<ReportArgs>
{
    public async Task PerformAsync(ReportArgs args, JobContext context, CancellationToken cancellationToken)
    {
        await Task.Delay(TimeSpan.FromSeconds(args.Seconds), cancellationToken);
        Console.WriteLine($"  job {context.JobId,3}  report '{args.Name}' generated in {args.Seconds}s");
    }
}

public sealed record ChargeArgs(string Customer, decimal Amount);

/// <summary>Fails on its first attempt (a flaky payment gateway), succeeds on the retry.</summary>
[Job("billing.charge", MaxAttempts = 3)]
public sealed class ChargeCard : IJob<ChargeArgs>
{
    public Task PerformAsync(ChargeArgs args, JobContext context, CancellationToken cancellationToken)
    {
        if (context.Attempt == 1)
        {
            Console.WriteLine($"  job {context.JobId,3}  charge {args.Customer} {args.Amount:0.00}: gateway timeout, will retry");
            throw new TimeoutException("payment gateway did not answer");
        }

        Console.WriteLine($"  job {context.JobId,3}  charged {args.Customer} {args.Amount:0.00} on attempt {context.Attempt}");
        return Task.CompletedTask;
    }
}
