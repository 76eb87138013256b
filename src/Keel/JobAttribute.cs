namespace Keel;

/// <summary>
/// Names a job kind and sets its defaults. The kind is what is stored with each job, so keep it when
/// you rename the class: jobs already in the database still find their code.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class JobAttribute : Attribute
{
    /// <summary>Declares the job's defaults, keeping the type name as its kind.</summary>
    public JobAttribute()
    {
    }

    /// <summary>Declares the job's stable kind name.</summary>
    /// <param name="kind">The name stored with each job of this type.</param>
    public JobAttribute(string kind) => Kind = kind;

    /// <summary>The stable kind name; the type name when not set.</summary>
    public string? Kind { get; }

    /// <summary>The default queue.</summary>
    public string? Queue { get; set; }

    /// <summary>The default priority (smaller runs first). <see cref="int.MinValue"/> means unset.</summary>
    public int Priority { get; set; } = int.MinValue;

    /// <summary>How many attempts before the job fails for good. 0 means unset.</summary>
    public int MaxAttempts { get; set; }

    /// <summary>The per-run timeout in seconds. 0 means no timeout.</summary>
    public double TimeoutSeconds { get; set; }
}

/// <summary>
/// Exceptions of these types (or derived types) fail the job at once instead of retrying it.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DiscardOnAttribute : Attribute
{
    /// <summary>Marks exception types that should not be retried.</summary>
    /// <param name="exceptionTypes">Exception types, each deriving from <see cref="Exception"/>.</param>
    public DiscardOnAttribute(params Type[] exceptionTypes) => ExceptionTypes = exceptionTypes;

    /// <summary>The exception types that fail the job without retrying.</summary>
    public IReadOnlyList<Type> ExceptionTypes { get; }
}
