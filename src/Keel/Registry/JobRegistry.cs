using System.Reflection;
using System.Text.Json;

namespace Keel.Registry;

/// <summary>The job kinds an application registered, found by kind name or by job type.</summary>
internal sealed class JobRegistry
{
    private readonly Dictionary<string, JobDescriptor> _byKind = new(StringComparer.Ordinal);
    private readonly Dictionary<Type, JobDescriptor> _byType = [];

    public IReadOnlyCollection<JobDescriptor> All => _byKind.Values;

    public JobDescriptor? FindByKind(string kind) => _byKind.GetValueOrDefault(kind);

    public JobDescriptor GetByType(Type jobType)
        => _byType.TryGetValue(jobType, out var descriptor)
            ? descriptor
            : throw new InvalidOperationException($"job type {jobType.FullName} is not registered with Keel; add it with AddJob<{jobType.Name}>() or AddJobsFromAssembly");

    /// <summary>Registers <paramref name="jobType"/>, which must implement <see cref="IJob{TArgs}"/> exactly once.</summary>
    public JobDescriptor Add(Type jobType, Action<JobOptions>? configure)
    {
        var argsType = ArgsTypeOf(jobType)
            ?? throw new ArgumentException($"{jobType.FullName} does not implement IJob<TArgs>", nameof(jobType));
        var attribute = jobType.GetCustomAttribute<JobAttribute>();
        var kind = attribute?.Kind ?? jobType.Name;
        if (string.IsNullOrWhiteSpace(kind))
        {
            throw new ArgumentException($"{jobType.FullName} declares an empty job kind", nameof(jobType));
        }

        if (_byType.TryGetValue(jobType, out var existing))
        {
            if (configure is not null)
            {
                configure(existing.Options);
            }

            return existing;
        }

        if (_byKind.TryGetValue(kind, out var clash))
        {
            throw new ArgumentException($"job kind '{kind}' is claimed by both {clash.JobType.FullName} and {jobType.FullName}; give one a distinct kind with [Job(\"…\")]", nameof(jobType));
        }

        var options = OptionsFrom(attribute, jobType);
        configure?.Invoke(options);
        var descriptor = new JobDescriptor
        {
            Kind = kind,
            JobType = jobType,
            ArgsType = argsType,
            Options = options,
            Invoke = BuildInvoker(jobType, argsType),
        };
        _byKind.Add(kind, descriptor);
        _byType.Add(jobType, descriptor);
        return descriptor;
    }

    /// <summary>Checks every kind's options; each message names the kind and the bad value.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        foreach (var job in _byKind.Values)
        {
            var o = job.Options;
            if (string.IsNullOrEmpty(o.Queue) || o.Queue.Contains('*', StringComparison.Ordinal))
            {
                errors.Add($"job kind '{job.Kind}': Queue '{o.Queue}' is invalid; a queue name is non-empty and has no '*'");
            }

            if (o.MaxAttempts < 1)
            {
                errors.Add($"job kind '{job.Kind}': MaxAttempts must be at least 1 (was {o.MaxAttempts})");
            }

            if (o.MaxWorkerLosses < 0)
            {
                errors.Add($"job kind '{job.Kind}': MaxWorkerLosses must not be negative (was {o.MaxWorkerLosses})");
            }

            if (o.Timeout is { } t && t <= TimeSpan.Zero)
            {
                errors.Add($"job kind '{job.Kind}': Timeout must be positive (was {t})");
            }

            if (o.Backoff.Base < TimeSpan.Zero || o.Backoff.Max < o.Backoff.Base || o.Backoff.Jitter is < 0 or > 1)
            {
                errors.Add($"job kind '{job.Kind}': Backoff needs 0 <= Base <= Max and Jitter in [0, 1] (was Base {o.Backoff.Base}, Max {o.Backoff.Max}, Jitter {o.Backoff.Jitter})");
            }

            if (o.Concurrency is { } c && (c.Limit < 1 || c.Duration <= TimeSpan.Zero))
            {
                errors.Add($"job kind '{job.Kind}': a concurrency limit needs Limit >= 1 and a positive Duration (was Limit {c.Limit}, Duration {c.Duration})");
            }

            foreach (var type in o.DiscardOn.Where(t => !typeof(Exception).IsAssignableFrom(t)))
            {
                errors.Add($"job kind '{job.Kind}': DiscardOn lists {type.FullName}, which is not an exception type");
            }
        }

        return errors;
    }

    public static Type? ArgsTypeOf(Type jobType)
    {
        if (jobType.IsAbstract || jobType.IsInterface || jobType.IsGenericTypeDefinition)
        {
            return null;
        }

        var jobInterfaces = jobType.GetInterfaces().Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IJob<>)).ToList();
        return jobInterfaces.Count switch
        {
            0 => null,
            1 => jobInterfaces[0].GetGenericArguments()[0],
            _ => throw new ArgumentException($"{jobType.FullName} implements IJob<TArgs> more than once; a job class has one arguments type", nameof(jobType)),
        };
    }

    private static JobOptions OptionsFrom(JobAttribute? attribute, Type jobType)
    {
        var options = new JobOptions();
        if (attribute is not null)
        {
            if (attribute.Queue is not null)
            {
                options.Queue = attribute.Queue;
            }

            if (attribute.Priority != int.MinValue)
            {
                options.Priority = attribute.Priority;
            }

            if (attribute.MaxAttempts > 0)
            {
                options.MaxAttempts = attribute.MaxAttempts;
            }

            if (attribute.TimeoutSeconds > 0)
            {
                options.Timeout = TimeSpan.FromSeconds(attribute.TimeoutSeconds);
            }
        }

        foreach (var discard in jobType.GetCustomAttributes<DiscardOnAttribute>())
        {
            foreach (var type in discard.ExceptionTypes)
            {
                options.DiscardOn.Add(type);
            }
        }

        return options;
    }

    private static Func<object, string, JsonSerializerOptions, JobContext, CancellationToken, Task> BuildInvoker(Type jobType, Type argsType)
    {
        var method = typeof(JobRegistry).GetMethod(nameof(Invoker), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(argsType);
        return (Func<object, string, JsonSerializerOptions, JobContext, CancellationToken, Task>)method.Invoke(null, null)!;
    }

    private static Func<object, string, JsonSerializerOptions, JobContext, CancellationToken, Task> Invoker<TArgs>()
        => (job, json, serializerOptions, context, cancellationToken) =>
        {
            TArgs args;
            try
            {
                args = JsonSerializer.Deserialize<TArgs>(json, serializerOptions)!;
            }
            catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException)
            {
                throw new JobArgumentsException($"the stored arguments of job {context.JobId} ({context.Kind}) do not deserialize to {typeof(TArgs).FullName}: {e.Message}", e);
            }

            return ((IJob<TArgs>)job).PerformAsync(args, context, cancellationToken);
        };
}
