using System.Reflection;
using Keel.Hosting;
using Keel.MySql;
using Keel.PostgreSql;
using Keel.Sqlite;
using Keel.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Keel.Tests.Unit;

/// <summary>
/// <c>Keel:Database</c> and <c>--database</c> are read for the engine they name, only in forms that name one engine, and
/// opened by the provider the store package registered (<c>UseSqlite()</c>, <c>UsePostgreSql()</c>).
/// </summary>
public sealed class DatabaseSettingTests
{
    [Theory]
    [InlineData("keel.db", "sqlite", KeelDatabaseForm.Path)]
    [InlineData("/var/lib/app/keel.db", "sqlite", KeelDatabaseForm.Path)]
    [InlineData(@"C:\app\keel.db", "sqlite", KeelDatabaseForm.Path)]
    [InlineData("/tmp/a=b/keel.db", "sqlite", KeelDatabaseForm.Path)]
    [InlineData("sqlite:keel.db", "sqlite", KeelDatabaseForm.Uri)]
    [InlineData("sqlite:///tmp/keel.db", "sqlite", KeelDatabaseForm.Uri)]
    [InlineData("Data Source=keel.db;Cache=Shared", "sqlite", KeelDatabaseForm.KeyValue)]
    [InlineData("Host=db;Database=app;Username=app", "postgresql", KeelDatabaseForm.KeyValue)]
    [InlineData("Database=app; host=db", "postgresql", KeelDatabaseForm.KeyValue)]
    [InlineData("postgres://app:secret@db:5433/app", "postgresql", KeelDatabaseForm.Uri)]
    [InlineData("postgresql://db/app", "postgresql", KeelDatabaseForm.Uri)]
    [InlineData("mysql://keel@db/keel", "mysql", KeelDatabaseForm.Uri)]
    [InlineData("mariadb://keel@db/keel", "mysql", KeelDatabaseForm.Uri)]
    public void A_setting_names_its_engine_by_its_form(string value, string engine, KeelDatabaseForm form)
    {
        var setting = KeelDatabaseSetting.Parse(value, []);
        Assert.Equal(engine, setting.Engine);
        Assert.Equal(form, setting.Form);
    }

    [Theory]
    [InlineData("sqlite:keel.db", "keel.db")]
    [InlineData("sqlite:///tmp/keel.db", "/tmp/keel.db")]
    [InlineData("keel.db", "keel.db")]
    public void The_sqlite_scheme_is_taken_off_the_path(string value, string path)
        => Assert.Equal(path, KeelDatabaseSetting.Parse(value, []).WithoutScheme);

    [Theory]
    [InlineData("Server=db;Database=app", "Server= is read by MySQL, PostgreSQL and SQL Server alike")]
    [InlineData("server=db;user id=app", "server= is read by")]
    [InlineData("Foo=bar", "is a connection string Keel cannot place (keys Foo)")]
    [InlineData("redis://cache:6379", "has the URI scheme 'redis', which no Keel engine reads")]
    [InlineData("  ", "no Keel database is configured")]
    public void An_ambiguous_or_unknown_setting_is_refused_saying_what_to_write(string value, string message)
    {
        var e = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Parse(value, []));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        if (!string.IsNullOrWhiteSpace(value))
        {
            Assert.Contains("postgres://", e.Message, StringComparison.Ordinal);
            Assert.Contains("Keel:Database", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void An_engine_whose_package_is_missing_names_the_package_and_the_call()
    {
        var services = Services(k => k.UseSqlite());
        var mysql = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Open("mysql://keel:secret@db/keel", services));
        Assert.Equal("Keel:Database 'mysql://keel:***@db/keel' needs the Keel.MySql package: add it and call UseMySql()", mysql.Message);
        var postgres = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Open("Host=db;Password=secret", services, "--database"));
        Assert.Equal("--database 'Host=db;Password=***' needs the Keel.PostgreSql package: add it and call UsePostgreSql()", postgres.Message);
        var sqlite = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Open("keel.db", Services(k => k.UsePostgreSql())));
        Assert.Equal("Keel:Database 'keel.db' needs the Keel.Sqlite package: add it and call UseSqlite()", sqlite.Message);
    }

    [Fact]
    public void Each_registered_provider_opens_its_own_engine()
    {
        var services = Services(k => k.UseSqlite().UsePostgreSql());
        var sqlite = (SqliteStorage)KeelDatabaseSetting.Open("sqlite:" + Path.Combine(Path.GetTempPath(), "never-created.db"), services);
        Assert.Equal(Path.Combine(Path.GetTempPath(), "never-created.db"), sqlite.DatabasePath);
        Assert.IsType<PostgreSqlStorage>(KeelDatabaseSetting.Open("Host=127.0.0.1;Database=keel", services));
        Assert.IsType<PostgreSqlStorage>(KeelDatabaseSetting.Open("postgres://keel:secret@127.0.0.1/keel", services));
    }

    [Fact]
    public void A_postgres_uri_becomes_an_npgsql_connection_string()
    {
        var uri = KeelDatabaseSetting.Parse("postgres://app%40corp:p%3Ass@db.example:5433/jobs?sslmode=require&Timeout=3", []).ParseUri();
        Assert.Equal(("db.example", 5433, "jobs", "app@corp", "p:ss"), (uri.Host, uri.Port, uri.Database, uri.Username, uri.Password));
        var connectionString = PostgreSqlStorageProvider.ConnectionStringOf(uri);
        var parsed = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        Assert.Equal(("db.example", 5433, "jobs", "app@corp", "p:ss", Npgsql.SslMode.Require, 3), (parsed.Host, parsed.Port, parsed.Database, parsed.Username, parsed.Password, parsed.SslMode, parsed.Timeout));
    }

    [Fact]
    public void A_mysql_uri_opens_mariadb_and_a_server_connection_string_stays_refused()
    {
        var services = Services(k => k.UseSqlite().UsePostgreSql().UseMySql());
        Assert.IsType<MySqlStorage>(KeelDatabaseSetting.Open("mysql://keel:secret@127.0.0.1/keel", services));
        Assert.IsType<MySqlStorage>(KeelDatabaseSetting.Open("mariadb://keel:secret@127.0.0.1/keel", services));
        var connectionString = MySqlStorageProvider.ConnectionStringOf(KeelDatabaseSetting.Parse("mysql://app%40corp:p%3Ass@db.example:3307/jobs?SslMode=Required", []).ParseUri());
        var parsed = new MySqlConnector.MySqlConnectionStringBuilder(connectionString);
        Assert.Equal(("db.example", 3307u, "jobs", "app@corp", "p:ss", MySqlConnector.MySqlSslMode.Required), (parsed.Server, parsed.Port, parsed.Database, parsed.UserID, parsed.Password, parsed.SslMode));

        var e = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Open("Server=db;Database=keel;User ID=keel", services));
        Assert.Contains("mysql://", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_connection_string_is_reported_naming_the_setting()
    {
        var e = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Open("postgres://db/app?nosuchkey=1", Services(k => k.UsePostgreSql())));
        Assert.StartsWith("Keel:Database 'postgres://db/app?nosuchkey=1' is not a valid PostgreSQL setting: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Keel_PostgreSql_Liveness_applies_to_the_store_Keel_Database_names()
    {
        var settings = new Dictionary<string, string?> { ["Keel:Database"] = "Host=127.0.0.1;Database=keel", ["Keel:PostgreSql:Liveness"] = "lease" };
        using var provider = Provider(settings);
        var storage = Assert.IsType<PostgreSqlStorage>(provider.GetRequiredService<IKeelStorage>());
        Assert.Equal(PostgreSqlLiveness.Lease, typeof(PostgreSqlStorage).GetField("_liveness", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(storage));

        settings["Keel:PostgreSql:Liveness"] = "Sometimes";
        using var bad = Provider(settings);
        var e = Assert.Throws<OptionsValidationException>(() => bad.GetRequiredService<IKeelStorage>());
        Assert.Contains("Keel:PostgreSql:Liveness must be", e.Message, StringComparison.Ordinal);
        Assert.Contains("(was 'Sometimes')", e.Message, StringComparison.Ordinal);

        static ServiceProvider Provider(Dictionary<string, string?> settings)
        {
            var services = new ServiceCollection();
            services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
            services.AddLogging();
            services.AddKeel(k => k.UseSqlite().UsePostgreSql());
            return services.BuildServiceProvider();
        }
    }

    [Fact]
    public void A_third_party_engine_is_reached_by_its_scheme()
    {
        var services = Services(k => k.AddStorageProvider(new FakeProvider()));
        var e = Assert.Throws<NotSupportedException>(() => KeelDatabaseSetting.Open("fake://somewhere", services));
        Assert.Equal("fake opened fake://somewhere", e.Message);
        var unknown = Assert.Throws<KeelDatabaseSettingException>(() => KeelDatabaseSetting.Parse("other://x", [new FakeProvider()]));
        Assert.Contains("or fake://…", unknown.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgres://app:secret@db/app", "postgres://app:***@db/app")]
    [InlineData("Host=db;Password=secret;Database=app", "Host=db;Password=***;Database=app")]
    [InlineData("keel.db", "keel.db")]
    public void Passwords_are_hidden_in_messages(string value, string redacted)
        => Assert.Equal(redacted, KeelDatabaseSetting.Redact(value));

    private static ServiceProvider Services(Action<IKeelBuilder> configure)
    {
        var services = new ServiceCollection();
        services.AddKeel(configure);
        return services.BuildServiceProvider();
    }

    private sealed class FakeProvider : IKeelStorageProvider
    {
        public string Engine => "fake";

        public IReadOnlyList<string> Schemes { get; } = ["fake"];

        public IKeelStorage Create(KeelDatabaseSetting setting, IServiceProvider services) => throw new NotSupportedException("fake opened " + setting.Value);
    }
}
