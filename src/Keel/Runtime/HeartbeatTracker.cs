using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Keel.Storage;

namespace Keel.Runtime;

/// <summary>
/// The process rows this OS process keeps alive against one store, with the time of each one's last successful
/// heartbeat: what the heartbeat health check reports. One tracker per store instance, so hosts sharing a process
/// (tests) do not see each other's rows.
/// </summary>
internal sealed class HeartbeatTracker
{
    private static readonly ConditionalWeakTable<IKeelStorage, HeartbeatTracker> Trackers = [];
    private readonly ConcurrentDictionary<object, Entry> _entries = new(ReferenceEqualityComparer.Instance);

    /// <summary>The tracker of <paramref name="storage"/>.</summary>
    public static HeartbeatTracker For(IKeelStorage storage) => Trackers.GetValue(storage, static _ => new HeartbeatTracker());

    /// <summary>A registration proved alive (registered or heartbeat written) at <paramref name="timestamp"/>.</summary>
    public void Beat(object owner, string name, long processId, long timestamp) => _entries[owner] = new Entry(name, processId, timestamp);

    /// <summary>A registration ended (deregistered).</summary>
    public void Remove(object owner) => _entries.TryRemove(owner, out _);

    /// <summary>Every live registration with its last successful beat (a <see cref="TimeProvider"/> timestamp).</summary>
    public IReadOnlyList<Entry> Entries => [.. _entries.Values];

    /// <summary>One registration.</summary>
    /// <param name="Name">The process row's name.</param>
    /// <param name="ProcessId">The process row id.</param>
    /// <param name="LastBeat">The timestamp of the last successful registration or heartbeat.</param>
    internal readonly record struct Entry(string Name, long ProcessId, long LastBeat);
}
