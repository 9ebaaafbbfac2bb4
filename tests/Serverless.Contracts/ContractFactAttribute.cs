using System.Reflection;

namespace Serverless.Contracts;

/// <summary>The port a contract test exercises.</summary>
public enum ContractPort
{
    /// <summary><c>IBlobStore</c>.</summary>
    Blobs,

    /// <summary><c>IMessageBus</c>.</summary>
    Bus,
}

/// <summary>
/// Declared by a test assembly that runs the contracts against real cloud resources: for each port, the environment
/// variables (any one of them) that name the resource. Without them those contract tests are skipped, saying what to set.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
public sealed class LiveContractAttribute(ContractPort port, params string[] anyOf) : Attribute
{
    /// <summary>The port.</summary>
    public ContractPort Port { get; } = port;

    /// <summary>The settings, any one of which is enough.</summary>
    public IReadOnlyList<string> AnyOf { get; } = anyOf;
}

/// <summary>
/// A contract test: runs everywhere, except in a live assembly (<see cref="LiveContractAttribute"/>) whose settings for
/// the port are missing, where it is skipped with the names to set.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractFactAttribute : FactAttribute
{
    /// <summary>A contract test of <paramref name="port"/>.</summary>
    public ContractFactAttribute(ContractPort port) => Skip = SkipReason(port);

    /// <summary>Why the contract tests of <paramref name="port"/> cannot run in this assembly, or null when they can.</summary>
    internal static string? SkipReason(ContractPort port)
    {
        var live = AppDomain.CurrentDomain.GetAssemblies()
            .SelectMany(a => a.GetCustomAttributes<LiveContractAttribute>())
            .FirstOrDefault(l => l.Port == port);
        return live is not null && live.AnyOf.All(name => string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(name)))
            ? $"live {port} contract: set {string.Join(" or ", live.AnyOf)} to run it against a real resource"
            : null;
    }
}

/// <summary>A data-driven contract test, skipped as <see cref="ContractFactAttribute"/> is.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ContractTheoryAttribute : TheoryAttribute
{
    /// <summary>A contract theory of <paramref name="port"/>.</summary>
    public ContractTheoryAttribute(ContractPort port) => Skip = ContractFactAttribute.SkipReason(port);
}
