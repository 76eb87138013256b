using System.Collections;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using Keel.Storage;
using Microsoft.Extensions.Configuration;

namespace Keel.Hosting;

/// <summary>
/// Checks the <c>Keel</c> configuration section against the options types before it is bound, because binding
/// forgives too much: a value that does not convert inside a list entry (<c>Keel:Workers:0:Threads=abc</c>) makes the
/// binder drop the whole entry, a misspelt key (<c>Keel:Wrokers</c>) is ignored, a single value where a list belongs
/// (<c>Queues=mail</c>) and an empty list (<c>[]</c>) bind to nothing — and the defaults run instead. Every such
/// key is reported, named by its full path. The valid keys come from the options types by reflection (what the
/// binder can set), so an option added to <see cref="KeelOptions"/> is accepted without a change here.
/// </summary>
internal static class KeelConfigurationCheck
{
    /// <summary>What an empty list would silently mean, for the lists where that is a surprise.</summary>
    private static readonly Dictionary<(Type, string), string> EmptyListHints = new()
    {
        [(typeof(WorkerOptions), nameof(WorkerOptions.Queues))] = "which would mean every queue: list the queues (\"*\" for every queue), or leave Queues out",
        [(typeof(KeelOptions), nameof(KeelOptions.Workers))] = "which would mean one worker on every queue: leave Workers out for that, or set Keel:ProcessJobs to false for no worker",
    };

    /// <summary>Every problem in <paramref name="section"/> (the <c>Keel</c> section); empty when it binds as written.</summary>
    /// <param name="section">The section.</param>
    /// <param name="optionsType">The type it binds to; <see cref="KeelOptions"/> unless a test says otherwise.</param>
    /// <param name="providers">The registered store providers: the sections they read (<c>Keel:PostgreSql</c>) are checked against their types.</param>
    /// <returns>One message per bad key, each naming the key.</returns>
    public static IReadOnlyList<string> Check(IConfigurationSection section, Type? optionsType = null, IEnumerable<IKeelStorageProvider>? providers = null)
    {
        ArgumentNullException.ThrowIfNull(section);
        optionsType ??= typeof(KeelOptions);
        var errors = new List<string>();
        if (!string.IsNullOrEmpty(section.Value) && !section.GetChildren().Any())
        {
            errors.Add($"{section.Path} must be a section of settings (Keel:Database, Keel:Workers…), not a single value (was '{section.Value}')");
            return errors;
        }

        CheckObject(section, optionsType, errors, StoreSections(providers ?? []));
        return errors;
    }

    /// <summary>
    /// Sections of <c>Keel</c> that a store reads itself (<c>Keel:PostgreSql:Liveness</c>), with what they hold: a
    /// registered provider's type; null for a section of one of Keel's engines whose package is not registered here
    /// (left alone: a configuration shared by applications on different engines stays valid).
    /// </summary>
    private static Dictionary<string, Type?> StoreSections(IEnumerable<IKeelStorageProvider> providers)
    {
        var sections = new Dictionary<string, Type?>(StringComparer.OrdinalIgnoreCase);
        foreach (var section in KnownEngines.All.Select(e => e.SettingsSection).OfType<string>())
        {
            sections[section] = null;
        }

        foreach (var provider in providers)
        {
            if (provider.SettingsSection is { } section)
            {
                sections[section] = provider.SettingsType;
            }
        }

        return sections;
    }

    private static void CheckObject(IConfigurationSection node, Type type, List<string> errors, Dictionary<string, Type?>? stores = null)
    {
        var properties = BindableProperties(type);
        foreach (var child in node.GetChildren())
        {
            if (properties.TryGetValue(child.Key, out var property))
            {
                CheckValue(child, property.PropertyType, (type, property.Name), errors);
                continue;
            }

            if (stores is not null && stores.TryGetValue(child.Key, out var store))
            {
                if (store is not null)
                {
                    CheckValue(child, store, (type, child.Key), errors);
                }

                continue;
            }

            var names = properties.Values.Select(p => p.Name).Distinct().Order(StringComparer.Ordinal).ToList();
            var parent = node.Path;
            errors.Add(Closest(child.Key, names) is { } suggestion
                ? $"{child.Path} is not a Keel setting: did you mean {parent}:{suggestion}?"
                : $"{child.Path} is not a Keel setting; the settings under {parent} are {string.Join(", ", names)}");
        }
    }

    private static void CheckValue(IConfigurationSection node, Type type, (Type Owner, string Name) property, List<string> errors)
    {
        var children = node.GetChildren().ToList();
        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            if (string.IsNullOrEmpty(node.Value) && children.Count == 0)
            {
                return; // Empty means "not set" for an optional value (e.g. ClearFinishedJobsAfter: keep forever).
            }

            type = underlying;
        }

        if (IsScalar(type))
        {
            CheckScalar(node, type, children.Count > 0, errors);
        }
        else if (DictionaryValueType(type) is { } valueType)
        {
            if (children.Count == 0 && !string.IsNullOrEmpty(node.Value))
            {
                errors.Add($"{node.Path} must be a section keyed by name, not a single value (was '{node.Value}')");
            }

            foreach (var child in children)
            {
                CheckValue(child, valueType, property, errors);
            }
        }
        else if (ElementType(type) is { } elementType)
        {
            CheckList(node, children, elementType, property, errors);
        }
        else if (IsKeelType(type))
        {
            if (children.Count == 0 && !string.IsNullOrEmpty(node.Value))
            {
                errors.Add($"{node.Path} must be a section of settings ({string.Join(", ", BindableProperties(type).Values.Select(p => p.Name).Distinct().Order(StringComparer.Ordinal))}), not a single value (was '{node.Value}')");
                return;
            }

            CheckObject(node, type, errors);
        }

        // A type of another library (JsonSerializerOptions) is left to the binder.
    }

    private static void CheckList(IConfigurationSection node, List<IConfigurationSection> children, Type elementType, (Type Owner, string Name) property, List<string> errors)
    {
        if (children.Count == 0)
        {
            if (!string.IsNullOrEmpty(node.Value))
            {
                errors.Add($"{node.Path} must be a list, not a single value: write {node.Path}:0={node.Value} (in JSON: [\"{node.Value}\"]) (was '{node.Value}')");
                return;
            }

            errors.Add($"{node.Path} is an empty list" + (EmptyListHints.TryGetValue(property, out var hint) ? ", " + hint : "; leave it out for the default"));
            return;
        }

        foreach (var child in children)
        {
            if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                errors.Add($"{child.Path} is not a list entry: {node.Path} is a list, numbered from 0 ({node.Path}:0, {node.Path}:1…)");
                continue;
            }

            CheckValue(child, elementType, property, errors);
        }
    }

    private static void CheckScalar(IConfigurationSection node, Type type, bool hasChildren, List<string> errors)
    {
        if (hasChildren)
        {
            var hint = type == typeof(string) ? " (JSON text such as Args is written as one string: \"{\\\"n\\\":1}\")" : string.Empty;
            errors.Add($"{node.Path} must be a single value, not a section{hint}");
            return;
        }

        var value = node.Value;
        if (value is null || type == typeof(string))
        {
            return; // JSON null leaves the default; any text is a string.
        }

        try
        {
            // The binder's own conversion: the type's converter, invariant culture.
            _ = TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            errors.Add($"{node.Path} must be {Describe(type)} (was '{value}')");
        }
    }

    private static string Describe(Type type)
    {
        if (type.IsEnum)
        {
            return "one of " + string.Join(", ", Enum.GetNames(type));
        }

        return Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => "true or false",
            TypeCode.Byte or TypeCode.Int16 or TypeCode.Int32 or TypeCode.Int64 or TypeCode.SByte or TypeCode.UInt16 or TypeCode.UInt32 or TypeCode.UInt64 => "a whole number",
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number",
            _ when type == typeof(TimeSpan) => "a duration such as 00:00:05 (hh:mm:ss, or d.hh:mm:ss)",
            _ => "a valid " + type.Name,
        };
    }

    /// <summary>
    /// The properties the binder can set, by name (case-insensitive, as configuration keys are): settable ones, and
    /// get-only ones whose value it fills in place (a mutable list or dictionary, or a nested options object).
    /// </summary>
    private static Dictionary<string, PropertyInfo> BindableProperties(Type type)
    {
        var result = new Dictionary<string, PropertyInfo>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || property.GetMethod is not { IsPublic: true })
            {
                continue;
            }

            var settable = property.SetMethod is { IsPublic: true };
            var fillable = DictionaryValueType(property.PropertyType) is not null
                || (ElementType(property.PropertyType) is not null && IsMutableCollection(property.PropertyType))
                || (IsKeelType(property.PropertyType) && !IsScalar(property.PropertyType));
            if (settable || fillable)
            {
                result.TryAdd(property.Name, property);
            }
        }

        return result;
    }

    private static bool IsScalar(Type type)
        => type == typeof(string) || type.IsPrimitive || type.IsEnum || type == typeof(decimal) || type == typeof(TimeSpan)
            || type == typeof(DateTimeOffset) || type == typeof(DateTime) || type == typeof(Guid) || type == typeof(Uri);

    /// <summary>Options classes of Keel's own (walked key by key); another library's types are left to the binder.</summary>
    private static bool IsKeelType(Type type) => type.IsClass && type.Namespace is { } ns && (ns == "Keel" || ns.StartsWith("Keel.", StringComparison.Ordinal));

    private static bool IsMutableCollection(Type type)
        => !type.IsArray && (type.IsClass || Implements(type, typeof(ICollection<>)) is not null);

    private static Type? ElementType(Type type)
    {
        if (type == typeof(string))
        {
            return null;
        }

        if (type.IsArray)
        {
            return type.GetElementType();
        }

        return Implements(type, typeof(IEnumerable<>))?.GetGenericArguments()[0] is { } element && typeof(IEnumerable).IsAssignableFrom(type)
            ? element
            : null;
    }

    private static Type? DictionaryValueType(Type type)
        => (Implements(type, typeof(IDictionary<,>)) ?? Implements(type, typeof(IReadOnlyDictionary<,>))) is { } dictionary
            && dictionary.GetGenericArguments()[0] == typeof(string)
                ? dictionary.GetGenericArguments()[1]
                : null;

    private static Type? Implements(Type type, Type generic)
        => type.IsGenericType && type.GetGenericTypeDefinition() == generic
            ? type
            : type.GetInterfaces().FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == generic);

    /// <summary>The valid key closest to a misspelt one (edit distance, ignoring case), when it is close enough to be what was meant.</summary>
    internal static string? Closest(string key, IEnumerable<string> candidates)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        var list = candidates.ToList();
        // A key cut short (HeartBeat for HeartbeatInterval) is far by edit distance but plainly meant.
        if (key.Length >= 4 && list.Where(c => c.StartsWith(key, StringComparison.OrdinalIgnoreCase)).OrderBy(c => c.Length).FirstOrDefault() is { } prefixed)
        {
            return prefixed;
        }

        foreach (var candidate in list)
        {
            var distance = Distance(key.ToUpperInvariant(), candidate.ToUpperInvariant());
            if (distance < bestDistance)
            {
                (best, bestDistance) = (candidate, distance);
            }
        }

        return best is not null && bestDistance <= Math.Max(2, Math.Min(key.Length, best.Length) / 3) ? best : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.</summary>
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }
}
