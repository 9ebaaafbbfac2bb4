using Serverless.Core.Ports;

namespace Serverless.Azure.Messaging;

/// <summary>Renders a <see cref="SubscriptionFilter"/> as a Service Bus SQL filter over application properties.</summary>
public static class SqlFilter
{
    /// <summary><c>type IN ('A', 'B') AND model = 'm'</c>; <c>1=1</c> for a filter that accepts everything.</summary>
    public static string Render(SubscriptionFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        if (filter.Accepts.Count == 0)
        {
            return "1=1";
        }

        return string.Join(" AND ", filter.Accepts.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a =>
            a.Value.Count == 1
                ? $"{Identifier(a.Key)} = {Literal(a.Value[0])}"
                : $"{Identifier(a.Key)} IN ({string.Join(", ", a.Value.Select(Literal))})"));
    }

    private static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string Identifier(string name) =>
        name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? name : "[" + name.Replace("]", "]]", StringComparison.Ordinal) + "]";
}
