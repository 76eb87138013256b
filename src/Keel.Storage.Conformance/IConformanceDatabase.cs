using System.Data.Common;
using System.Globalization;

namespace Keel.Storage.Conformance;

/// <summary>
/// One fresh database of the engine under test, as the conformance suite sees it: the store, and raw SQL access to
/// the same database for the assertions (the suite reads and writes the <c>keel_</c> tables directly, as an operator
/// or a crash would). An engine implements this once; each test creates one through
/// <see cref="ConformanceTests.CreateDatabaseAsync"/> and disposes it at the end.
/// </summary>
public interface IConformanceDatabase : IAsyncDisposable
{
    /// <summary>The store under test, on this database. Disposing the fixture disposes it.</summary>
    IKeelStorage Storage { get; }

    /// <summary>
    /// Another store instance on the same database, as a second host would have: tests that race two processes use
    /// it so that no lock inside one store instance can hide a race. The caller disposes it (when it is
    /// <see cref="IAsyncDisposable"/>).
    /// </summary>
    IKeelStorage NewStorage();

    /// <summary>
    /// An open connection to this database through the engine's own ADO.NET driver: the raw SQL of the assertions
    /// runs on it, and it is the connection a caller enqueues on with its own transaction
    /// (<see cref="JobsInsertParams.Connection"/>).
    /// </summary>
    Task<DbConnection> OpenAsync();

    /// <summary>A SQL literal for <paramref name="value"/> in the engine's time encoding, for a raw <c>INSERT</c>/<c>UPDATE</c>.</summary>
    string TimeLiteral(DateTimeOffset value);

    /// <summary>Reads a time column the store wrote (such as <c>keel_recurring_executions.run_at</c>) from a raw query.</summary>
    DateTimeOffset ReadTime(DbDataReader reader, int ordinal);

    /// <summary>
    /// A capability: the dead (deleted, not yet reclaimed) row versions the engine reports for
    /// <paramref name="table"/>, or <see langword="null"/> when it leaves none for
    /// <see cref="IKeelStorage.HotTablesVacuumAsync"/> to clean (SQLite; InnoDB, whose purge thread removes them).
    /// When <see langword="null"/>, the suite checks that the vacuum cleans nothing; otherwise it checks that the
    /// vacuum cleans the ready table after a burst of claims.
    /// </summary>
    Task<long?> DeadRowsAsync(string table);

    /// <summary>Runs <paramref name="sql"/> and returns the first column of the first row as a number.</summary>
    async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    /// <summary>Runs <paramref name="sql"/> and returns the number of rows it changed.</summary>
    async Task<int> ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteNonQueryAsync();
    }
}
