namespace Keel.Dashboard.Tests.Infrastructure;

public sealed record EmailArgs(string Email, string ApiKey);

[Job("emails.welcome", Queue = "mail")]
public sealed class SendWelcomeEmail : IJob<EmailArgs>
{
    public Task PerformAsync(EmailArgs args, JobContext context, CancellationToken ct) => Task.CompletedTask;
}

public sealed record ReportArgs(string Name);

[Job("reports.build", Queue = "reports")]
public sealed class BuildReport : IJob<ReportArgs>
{
    public Task PerformAsync(ReportArgs args, JobContext context, CancellationToken ct) => Task.CompletedTask;
}

public sealed record AccountArgs(int AccountId);

[Job("accounts.sync", Queue = "sync")]
public sealed class SyncAccount : IJob<AccountArgs>
{
    public Task PerformAsync(AccountArgs args, JobContext context, CancellationToken ct) => Task.CompletedTask;
}
