namespace Keel.Storage;

/// <summary>How a database setting is written.</summary>
public enum KeelDatabaseForm
{
    /// <summary>A file path (SQLite): <c>keel.db</c>, <c>/var/lib/app/keel.db</c>.</summary>
    Path,

    /// <summary><c>key=value</c> pairs separated by <c>;</c>: <c>Host=db;Database=app</c>, <c>Data Source=keel.db</c>.</summary>
    KeyValue,

    /// <summary>A URI whose scheme names the engine: <c>postgres://app@db/app</c>, <c>mysql://…</c>, <c>sqlite:keel.db</c>.</summary>
    Uri,
}
