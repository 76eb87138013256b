using System.Text.Json;
using Keel.Registry;
using Microsoft.Extensions.DependencyInjection;

namespace Keel;

/// <summary>Declares static recurring tasks in code, beside (and over) those in the <c>Keel:Recurring</c> section.</summary>
public static class KeelRecurringBuilderExtensions
{
    /// <summary>Adds (or replaces) the static recurring task <paramref name="key"/>, described field by field.</summary>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="key">The task key.</param>
    /// <param name="configure">Sets the kind, schedule, arguments and the rest.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder AddRecurring(this IKeelBuilder builder, string key, Action<RecurringTaskOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<KeelOptions>().PostConfigure(options =>
        {
            var task = new RecurringTaskOptions();
            configure(task);
            options.Recurring[key] = task;
        });
        return builder;
    }

    /// <summary>
    /// Adds (or replaces) the static recurring task <paramref name="key"/> enqueuing <typeparamref name="TJob"/> with
    /// <paramref name="args"/> on <paramref name="schedule"/>; registers the job class if needed.
    /// </summary>
    /// <typeparam name="TJob">The job class.</typeparam>
    /// <typeparam name="TArgs">Its arguments type.</typeparam>
    /// <param name="builder">The Keel builder.</param>
    /// <param name="key">The task key.</param>
    /// <param name="schedule">A 5- or 6-field cron expression or a macro such as <c>@hourly</c>.</param>
    /// <param name="args">The arguments every run gets (serialized with <see cref="KeelOptions.JsonSerializerOptions"/>).</param>
    /// <param name="configure">Sets the time zone, queue, catch-up policy and the rest.</param>
    /// <returns>The builder.</returns>
    public static IKeelBuilder AddRecurring<TJob, TArgs>(this IKeelBuilder builder, string key, string schedule, TArgs args, Action<RecurringTaskOptions>? configure = null)
        where TJob : class, IJob<TArgs>
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        builder.AddJob<TJob>();
        builder.Services.AddOptions<KeelOptions>().PostConfigure<JobRegistry>((options, registry) =>
        {
            var task = new RecurringTaskOptions
            {
                Kind = registry.GetByType(typeof(TJob)).Kind,
                Schedule = schedule,
                Args = JsonSerializer.Serialize(args, options.JsonSerializerOptions),
            };
            configure?.Invoke(task);
            options.Recurring[key] = task;
        });
        return builder;
    }
}
