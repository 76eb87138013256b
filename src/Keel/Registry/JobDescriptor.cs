using System.Text.Json;

namespace Keel.Registry;

/// <summary>Everything Keel knows about one registered job kind.</summary>
internal sealed class JobDescriptor
{
    public required string Kind { get; init; }

    public required Type JobType { get; init; }

    public required Type ArgsType { get; init; }

    public required JobOptions Options { get; init; }

    /// <summary>Deserializes the stored args and runs the job instance; built once per kind, no reflection per run.</summary>
    public required Func<object, string, JsonSerializerOptions, JobContext, CancellationToken, Task> Invoke { get; init; }
}
