using Keel.TestInfrastructure;
using Keel.Tests.Infrastructure;
using Keel.Tests.Processes;
using MySqlConnector;
using Xunit.Abstractions;

namespace Keel.Tests.Faults;

/// <summary>
/// The network faults of DESIGN §2.4 on MariaDB, whose liveness is the lease alone: connections killed by the server
/// (<c>KILL CONNECTION</c>, what a restart of a proxy or a DBA does), reset by a proxy, and a worker black-holed past
/// its lease. A <c>target</c> app reaches the database through the fault, an <c>observer</c> does not; the database
/// and the run logs must show no overlapping runs, no live process pruned, no loss charged, nothing left claimed.
/// </summary>
[Collection(RealProcesses.Name)]
public sealed class MySqlFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Killed_connections_prune_no_live_process_and_run_no_job_twice()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.MySql);
        var server = await SharedMariaDb.GetAsync();
        await using var proxy = FaultProxy.Start(server.Port);
        await using var scene = new FaultScene(output, db);
        await scene.StartAsync(("target", 2, 2, Via(db, proxy)), ("observer", 1, 2, db.Setting));
        var limited = await PostgreSqlFaultTests.StartWorkAsync(scene);
        var before = await scene.SnapshotAsync();

        // The server ends every session that came through the proxy (the target's): its own view of the connections.
        for (var round = 0; round < 3; round++)
        {
            var killed = 0;
            foreach (var id in await TargetSessionsAsync(db, proxy))
            {
                try
                {
                    await ExecuteAsync(db, $"KILL CONNECTION {id}");
                    killed++;
                }
                catch (MySqlException)
                {
                    // Gone already.
                }
            }

            scene.Note($"KILL CONNECTION of {killed} sessions of the target");
            await Task.Delay(1000);
        }

        await PostgreSqlFaultTests.FinishAsync(scene, before, limited);
    }

    [Fact]
    public async Task Connections_reset_by_a_proxy_prune_no_live_process_and_run_no_job_twice()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.MySql);
        var server = await SharedMariaDb.GetAsync();
        await NetworkFaultCases.ResetsAsync(output, db, server.Port, proxy => Via(db, proxy), db.Setting);
    }

    [Fact]
    public async Task A_worker_black_holed_past_its_lease_cancels_its_job_before_another_host_takes_it_over()
    {
        await using var db = await TestDatabase.CreateAsync(Engine.MySql);
        var server = await SharedMariaDb.GetAsync();
        await NetworkFaultCases.BlackHoleAsync(output, db, server.Port, proxy => Via(db, proxy), db.Setting);
    }

    /// <summary>The same database through <paramref name="proxy"/>, as a <c>mysql://</c> setting.</summary>
    private static string Via(TestDatabase db, FaultProxy proxy)
    {
        var b = new MySqlConnectionStringBuilder(db.ConnectionString);
        return $"mysql://{Uri.EscapeDataString(b.UserID)}:{Uri.EscapeDataString(b.Password)}@{proxy.Host}:{proxy.Port}/{Uri.EscapeDataString(b.Database)}";
    }

    /// <summary>The server's ids of the sessions that came through the proxy: the proxy's outgoing ports.</summary>
    private static async Task<IReadOnlyList<long>> TargetSessionsAsync(TestDatabase db, FaultProxy proxy)
    {
        var ports = proxy.UpstreamLocalPorts();
        var ids = new List<long>();
        await using var connection = new MySqlConnection(db.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, host FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()";
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var host = reader.GetString(1);
            if (int.TryParse(host[(host.LastIndexOf(':') + 1)..], out var port) && ports.Contains(port))
            {
                ids.Add(reader.GetInt64(0));
            }
        }

        return ids;
    }

    private static async Task ExecuteAsync(TestDatabase db, string sql)
    {
        await using var connection = new MySqlConnection(db.ConnectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
