using Keel;

namespace KeelWorker.Jobs;

/// <summary>The arguments: stored as JSON with the job, so keep them small (ids, not whole objects).</summary>
public sealed record ReminderArgs(string Email, string Message);

/// <summary>Sends a reminder. The kind ("reminders.send") is stored with each job: keep it when you rename the class.</summary>
[Job("reminders.send", Queue = "default", MaxAttempts = 5)]
public sealed class SendReminder(IEmailSender sender) : IJob<ReminderArgs>
{
    public Task PerformAsync(ReminderArgs args, JobContext context, CancellationToken cancellationToken)
        => sender.SendAsync(args.Email, args.Message, cancellationToken);
}

/// <summary>What the job needs from the outside world: an interface, so that tests can give it a fake.</summary>
public interface IEmailSender
{
    Task SendAsync(string email, string message, CancellationToken cancellationToken);
}

/// <summary>Stands in for a real mail service.</summary>
public sealed class LoggingEmailSender(ILogger<LoggingEmailSender> logger) : IEmailSender
{
    public Task SendAsync(string email, string message, CancellationToken cancellationToken)
    {
        logger.LogInformation("Reminder to {Email}: {Message}", email, message);
        return Task.CompletedTask;
    }
}
