using System.Text.Json.Nodes;

namespace Serverless.Infra.Tests;

/// <summary>
/// The serverless hosts carry only what they run: no TorchSharp, no libtorch, no torch-side model project anywhere in
/// their dependency graph (restore's <c>project.assets.json</c>, which is what build and publish copy from).
/// </summary>
public sealed class LeanHostsTests
{
    private static readonly string[] TorchLibraries = ["TorchSharp", "libtorch", "Serverless.Model/"];

    [Theory]
    [InlineData("Serverless.Functions")]
    [InlineData("Serverless.Worker")]
    public void ServerlessHost_DependsOnNothingThatCarriesLibtorch(string host)
    {
        var assets = Path.Combine(BicepTests.Root, "artifacts", "obj", host, "project.assets.json");
        File.Exists(assets).ShouldBeTrue($"{assets} is written by restore");
        var libraries = JsonNode.Parse(File.ReadAllText(assets))!["libraries"]!.AsObject().Select(l => l.Key).ToList();

        libraries.ShouldContain(l => l.StartsWith("Serverless.Model.Formats/", StringComparison.Ordinal), "the torch-free half of the model is what the stages use");
        libraries.Where(l => TorchLibraries.Any(t => l.StartsWith(t, StringComparison.OrdinalIgnoreCase))).ShouldBeEmpty($"{host} must not ship libtorch (650 MB)");
    }
}
