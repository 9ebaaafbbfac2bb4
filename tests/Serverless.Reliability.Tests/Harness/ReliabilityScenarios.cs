namespace Serverless.Reliability.Tests.Harness;

/// <summary>Scenarios run one at a time: each starts trainers, and some set process-wide state (chaos).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ReliabilityScenarios
{
    public const string Name = "Reliability";
}
