using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Keel.Tests.Infrastructure;

/// <summary>Keeps every log entry of a host, and lets a test wait for one by event id.</summary>
public sealed class LogRecorder : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource> _waiters = new();

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    public IReadOnlyList<LogEntry> WithId(int eventId) => [.. _entries.Where(e => e.EventId == eventId)];

    /// <summary>Completes once an entry with <paramref name="eventId"/> has been logged.</summary>
    public Task Logged(int eventId) => _waiters.GetOrAdd(eventId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        _entries.Enqueue(entry);
        _waiters.GetOrAdd(entry.EventId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    private sealed class Logger(LogRecorder recorder, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => recorder.Add(new LogEntry(category, eventId.Id, logLevel, formatter(state, exception), exception));
    }
}

public sealed record LogEntry(string Category, int EventId, LogLevel Level, string Message, Exception? Exception);
