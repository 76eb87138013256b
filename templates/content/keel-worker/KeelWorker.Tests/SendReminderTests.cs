using KeelWorker.Jobs;
using Microsoft.Extensions.DependencyInjection;

namespace KeelWorker.Tests;

/// <summary>Keel.Testing runs the jobs on a temporary SQLite file with a fake clock: no server, no waiting.</summary>
public sealed class SendReminderTests
{
    private readonly RecordingEmailSender _sender = new();

    private Task<KeelTestHost> StartAsync()
        => KeelTestHost.StartAsync(k => k.AddJob<SendReminder>(), services => services.AddSingleton<IEmailSender>(_sender));

    [Fact]
    public async Task Sends_the_reminder()
    {
        await using var keel = await StartAsync();
        await keel.Client.EnqueueAsync<SendReminder, ReminderArgs>(new("ada@example.com", "hello"));

        await keel.RunUntilIdleAsync();

        await keel.AssertPerformedAsync<SendReminder, ReminderArgs>(a => a.Email == "ada@example.com");
        Assert.Equal(["ada@example.com: hello"], _sender.Sent);
    }

    [Fact]
    public async Task A_failed_send_is_retried_after_its_backoff()
    {
        await using var keel = await StartAsync();
        _sender.FailuresLeft = 1;
        await keel.Client.EnqueueAsync<SendReminder, ReminderArgs>(new("bob@example.com", "hi"));

        await keel.RunUntilIdleAsync(new DrainOptions { AdvanceTime = true });   // the fake clock jumps to the retry

        var job = await keel.AssertPerformedAsync<SendReminder, ReminderArgs>();
        Assert.Equal(2, job.Attempts);
        Assert.Single(_sender.Sent);
    }

    private sealed class RecordingEmailSender : IEmailSender
    {
        public List<string> Sent { get; } = [];

        public int FailuresLeft { get; set; }

        public Task SendAsync(string email, string message, CancellationToken cancellationToken)
        {
            if (FailuresLeft-- > 0)
            {
                throw new InvalidOperationException("the mail server is down");
            }

            Sent.Add($"{email}: {message}");
            return Task.CompletedTask;
        }
    }
}
