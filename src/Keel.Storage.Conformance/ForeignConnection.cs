using System.Data;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;

namespace Keel.Storage.Conformance;

/// <summary>A connection of no engine at all: a store must refuse to enqueue on it (it is never opened).</summary>
[SuppressMessage("Security", "CA2100", Justification = "Never executes anything.")]
internal sealed class ForeignConnection : DbConnection
{
    [AllowNull]
    public override string ConnectionString { get; set; } = "Foreign=1";

    public override string Database => "foreign";

    public override string DataSource => "foreign";

    public override string ServerVersion => "0";

    public override ConnectionState State => ConnectionState.Open;

    public override void ChangeDatabase(string databaseName) => throw new NotSupportedException();

    public override void Close()
    {
    }

    public override void Open()
    {
    }

    protected override DbTransaction BeginDbTransaction(IsolationLevel isolationLevel) => throw new NotSupportedException("a foreign connection runs nothing");

    protected override DbCommand CreateDbCommand() => throw new NotSupportedException("a foreign connection runs nothing");
}
