using Keel.Storage;
using Microsoft.Extensions.Options;

namespace Keel;

/// <summary>Checks <see cref="KeelOptions"/> at start; every message names the configuration key and the bad value.</summary>
public sealed class KeelOptionsValidator : IValidateOptions<KeelOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, KeelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        const string root = KeelOptions.SectionName;
        if (options.ShutdownTimeout < TimeSpan.Zero)
        {
            errors.Add($"{root}:ShutdownTimeout must not be negative (was {options.ShutdownTimeout})");
        }

        if (options.StartupTimeout < TimeSpan.Zero)
        {
            errors.Add($"{root}:StartupTimeout must not be negative (was {options.StartupTimeout})");
        }

        if (options.MaxArgumentsBytes < 1024)
        {
            errors.Add($"{root}:MaxArgumentsBytes must be at least 1024 (was {options.MaxArgumentsBytes})");
        }

        if (options.HeartbeatInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"{root}:HeartbeatInterval must be at least 00:00:00.010 (was {options.HeartbeatInterval})");
        }

        if (options.AliveThreshold < options.HeartbeatInterval * 3)
        {
            errors.Add($"{root}:AliveThreshold must be at least three times {root}:HeartbeatInterval (was {options.AliveThreshold} with a heartbeat of {options.HeartbeatInterval}): a process that cannot renew its lease fences itself (cancels its jobs) when a third of it is left, and must be able to miss a heartbeat before that");
        }

        if (options.MaxCheckpointBytes is < 1 or > 16 * 1024 * 1024)
        {
            errors.Add($"{root}:MaxCheckpointBytes must be between 1 and 16777216 (was {options.MaxCheckpointBytes}): a checkpoint is stored in the job's row and read with every claim of it");
        }

        if (options.MaxResultBytes is < 1 or > 16 * 1024 * 1024)
        {
            errors.Add($"{root}:MaxResultBytes must be between 1 and 16777216 (was {options.MaxResultBytes}): a result is stored in the job's row");
        }

        if (options.MaxJobLogLines < 0 || options.MaxJobLogBytes < 0)
        {
            errors.Add($"{root}:MaxJobLogLines and {root}:MaxJobLogBytes must not be negative (were {options.MaxJobLogLines} and {options.MaxJobLogBytes}); 0 keeps no lines");
        }

        if (options.CancellationPollInterval <= TimeSpan.Zero || options.CancellationPollInterval > options.AliveThreshold)
        {
            errors.Add($"{root}:CancellationPollInterval must be positive and at most {root}:AliveThreshold (was {options.CancellationPollInterval} with a threshold of {options.AliveThreshold})");
        }

        if (options.CancellationGrace < TimeSpan.Zero || options.CancellationGrace > options.AliveThreshold / 4)
        {
            errors.Add($"{root}:CancellationGrace must be between 0 and a quarter of {root}:AliveThreshold (was {options.CancellationGrace} with a threshold of {options.AliveThreshold}): a process that fences itself when a third of its lease is left must be done waiting for its cancelled jobs before the lease ends");
        }

        if (options.TerminationGracePeriod is { } grace && options.StopBudget + TimeSpan.FromSeconds(2) > grace)
        {
            errors.Add($"{root}:ShutdownTimeout ({options.ShutdownTimeout}) does not fit {root}:TerminationGracePeriod ({grace}): a stop takes up to ShutdownTimeout + CancellationGrace ({options.CancellationGrace}) + 8 s = {options.StopBudget}, and the platform kills the process 2 s after that at the latest; lower ShutdownTimeout to at most {grace - options.CancellationGrace - TimeSpan.FromSeconds(10)} or raise terminationGracePeriodSeconds");
        }

        if (options.SessionGracePeriod < TimeSpan.FromMilliseconds(100) || options.SessionGracePeriod >= options.AliveThreshold)
        {
            errors.Add($"{root}:SessionGracePeriod must be at least 00:00:00.100 and less than {root}:AliveThreshold (was {options.SessionGracePeriod} with a threshold of {options.AliveThreshold})");
        }

        if (options.ClearFinishedJobsAfter is { } keep && keep < TimeSpan.Zero)
        {
            errors.Add($"{root}:ClearFinishedJobsAfter must not be negative (was {keep})");
        }

        if (options.ProcessStartTimeout < TimeSpan.FromSeconds(1))
        {
            errors.Add($"{root}:ProcessStartTimeout must be at least 00:00:01 (was {options.ProcessStartTimeout})");
        }

        if (options.PruneInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"{root}:PruneInterval must be at least 00:00:00.010 (was {options.PruneInterval})");
        }

        if (options.LivenessCheckInterval < TimeSpan.FromMilliseconds(10))
        {
            errors.Add($"{root}:LivenessCheckInterval must be at least 00:00:00.010 (was {options.LivenessCheckInterval})");
        }

        if (options.TelemetryRefreshInterval < TimeSpan.Zero)
        {
            errors.Add($"{root}:TelemetryRefreshInterval must not be negative (was {options.TelemetryRefreshInterval})");
        }

        if (options.HealthCheckPort is { } port && port is < 1 or > 65535)
        {
            errors.Add($"{root}:HealthCheckPort must be between 1 and 65535 (was {port})");
        }

        if (string.IsNullOrWhiteSpace(options.HealthCheckHost) || options.HealthCheckHost.Contains('/', StringComparison.Ordinal))
        {
            errors.Add($"{root}:HealthCheckHost must be a host name, an IP address or * (was '{options.HealthCheckHost}')");
        }

        if (options.StaleClaimsDegradedThreshold < 1)
        {
            errors.Add($"{root}:StaleClaimsDegradedThreshold must be at least 1 (was {options.StaleClaimsDegradedThreshold})");
        }

        for (var i = 0; i < options.Workers.Count; i++)
        {
            var worker = options.Workers[i];
            var key = $"{root}:Workers:{i}";
            if (worker.Threads is < 1 or > 1000)
            {
                errors.Add($"{key}:Threads must be between 1 and 1000 (was {worker.Threads})");
            }

            if (worker.ClaimAhead is < 0 or > 1000)
            {
                errors.Add($"{key}:ClaimAhead must be between 0 and 1000, or unset for twenty times Threads, at most 1000 (was {worker.ClaimAhead})");
            }

            if (worker.Processes is < 1 or > 100)
            {
                errors.Add($"{key}:Processes must be between 1 and 100 (was {worker.Processes})");
            }

            if (worker.PollingInterval < TimeSpan.FromMilliseconds(10) || worker.PollingInterval > TimeSpan.FromHours(1))
            {
                errors.Add($"{key}:PollingInterval must be between 00:00:00.010 and 01:00:00 (was {worker.PollingInterval})");
            }

            for (var q = 0; q < (worker.Queues?.Count ?? 0); q++)
            {
                try
                {
                    QueueFilter.Parse(worker.Queues![q]);
                }
                catch (ArgumentException e)
                {
                    errors.Add($"{key}:Queues:{q} is invalid: {e.Message.Split(" (Parameter", 2)[0]}");
                }
            }
        }

        if (options.Dispatcher.BatchSize is < 1 or > 100_000)
        {
            errors.Add($"{root}:Dispatcher:BatchSize must be between 1 and 100000 (was {options.Dispatcher.BatchSize})");
        }

        if (options.Dispatcher.PollingInterval < TimeSpan.FromMilliseconds(10) || options.Dispatcher.PollingInterval > TimeSpan.FromHours(1))
        {
            errors.Add($"{root}:Dispatcher:PollingInterval must be between 00:00:00.010 and 01:00:00 (was {options.Dispatcher.PollingInterval})");
        }

        errors.AddRange(ValidateRecurring(options));

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static IEnumerable<string> ValidateRecurring(KeelOptions options)
    {
        const string root = KeelOptions.SectionName;
        var scheduler = options.Scheduler;
        if (scheduler.PollingInterval < TimeSpan.FromMilliseconds(10) || scheduler.PollingInterval > TimeSpan.FromHours(1))
        {
            yield return $"{root}:Scheduler:PollingInterval must be between 00:00:00.010 and 01:00:00 (was {scheduler.PollingInterval})";
        }

        if (scheduler.MisfireThreshold < scheduler.PollingInterval)
        {
            yield return $"{root}:Scheduler:MisfireThreshold must be at least {root}:Scheduler:PollingInterval (was {scheduler.MisfireThreshold} with a polling interval of {scheduler.PollingInterval})";
        }

        foreach (var (key, task) in options.Recurring)
        {
            foreach (var error in Runtime.RecurringTasks.Validate($"{root}:Recurring:{key}", key, task))
            {
                yield return error;
            }
        }
    }
}
