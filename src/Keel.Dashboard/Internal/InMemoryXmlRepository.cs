using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Keel.Dashboard.Internal;

/// <summary>
/// Data-protection keys that live as long as the process: the standalone dashboard's antiforgery tokens only need to
/// outlive a page view, and nothing is written to disk (ASP.NET Core's default is a folder under the home directory).
/// </summary>
internal sealed class InMemoryXmlRepository : IXmlRepository
{
    private readonly List<XElement> _elements = [];
    private readonly Lock _lock = new();

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        lock (_lock)
        {
            return [.. _elements.Select(e => new XElement(e))];
        }
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        lock (_lock)
        {
            _elements.Add(new XElement(element));
        }
    }
}
