using Serverless.Contracts;

// Without these settings the contract tests skip, saying what to set (see the project file for how to run it).
[assembly: LiveContract(ContractPort.Bus, "SERVICEBUS_CONNECTION", "SERVICEBUS_NAMESPACE")]
[assembly: LiveContract(ContractPort.Blobs, "STORAGE_BLOB_ENDPOINT")]

namespace Serverless.Azure.LiveTests;

/// <summary>A live test that needs all of <paramref name="settings"/>; skipped, naming them, when one is missing.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class LiveFactAttribute : FactAttribute
{
    /// <summary>Needs every one of <paramref name="settings"/>.</summary>
    public LiveFactAttribute(params string[] settings)
    {
        var missing = settings.Where(s => string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(s))).ToList();
        if (missing.Count > 0)
        {
            Skip = $"live test: set {string.Join(", ", missing)} to run it against real resources";
        }
    }
}
