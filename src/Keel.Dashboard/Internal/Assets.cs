using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;

namespace Keel.Dashboard.Internal;

/// <summary>The embedded stylesheet and script, served from memory with a long cache lifetime.</summary>
internal static class Assets
{
    private static readonly ConcurrentDictionary<string, byte[]?> Cache = new(StringComparer.Ordinal);

    public static async Task ServeAsync(HttpContext http, string name)
    {
        var type = Path.GetExtension(name) switch
        {
            ".css" => "text/css; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            _ => null,
        };
        var bytes = type is null ? null : Cache.GetOrAdd(name, Load);
        if (bytes is null)
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        http.Response.ContentType = type;
        http.Response.Headers.CacheControl = "public, max-age=3600";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        await http.Response.Body.WriteAsync(bytes, http.RequestAborted);
    }

    private static byte[]? Load(string name)
    {
        using var stream = typeof(Assets).Assembly.GetManifestResourceStream("Keel.Dashboard.Assets." + name);
        if (stream is null)
        {
            return null;
        }

        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
