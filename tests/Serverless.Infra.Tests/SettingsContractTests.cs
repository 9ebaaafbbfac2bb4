using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Serverless.Azure;
using Serverless.Core.Ports;
using Serverless.Functions;
using Serverless.Pipeline.Api;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Ingest;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Schedule;
using Serverless.Worker;

namespace Serverless.Infra.Tests;

/// <summary>
/// The settings contract: for each host, what its code needs at start-up (<see cref="HostSettings"/>, which the host
/// checks when it starts) is what the compiled Bicep gives it; and the host's wiring, built from exactly those
/// settings, resolves every service it runs — so a deployment cannot start a host that crashes for want of a setting.
/// </summary>
public sealed class SettingsContractTests
{
    /// <summary>Values ARM would put in place of the template's expressions, by the kind of setting.</summary>
    private static string Resolve(string name, string value) => !value.StartsWith('[') ? value : name switch
    {
        _ when name.EndsWith("blobServiceUri", StringComparison.Ordinal) => "https://tunedev.blob.core.windows.net/",
        _ when name.EndsWith("queueServiceUri", StringComparison.Ordinal) => "https://tunedev.queue.core.windows.net/",
        "ServiceBus__fullyQualifiedNamespace" => "tune-dev-bus.servicebus.windows.net",
        "Trainer__JobResourceId" => "/subscriptions/0000/resourceGroups/rg-tune/providers/Microsoft.App/jobs/tune-dev-trainer",
        "APPLICATIONINSIGHTS_CONNECTION_STRING" => "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.invalid/",
        _ when name.Contains("clientId", StringComparison.OrdinalIgnoreCase) || name == "AZURE_CLIENT_ID" => "00000000-0000-0000-0000-0000000000c1",
        _ => "from-arm",
    };

    private static Dictionary<string, string> Settings(IEnumerable<JsonNode?> entries) =>
        entries.OfType<JsonObject>().ToDictionary(e => e["name"]!.GetValue<string>(), e => Resolve(e["name"]!.GetValue<string>(), e["value"]?.GetValue<string>() ?? ""));

    private static Dictionary<string, string> FunctionsApp() =>
        Settings(BicepTests.OfType("Microsoft.Web/sites").Single()["properties"]!["siteConfig"]!["appSettings"]!.AsArray());

    private static Dictionary<string, string> Worker() =>
        Settings(BicepTests.OfType("Microsoft.App/containerApps").Single()["properties"]!["template"]!["containers"]!.AsArray().Single()!["env"]!.AsArray());

    private static Dictionary<string, string> TrainerJob() =>
        Settings(BicepTests.OfType("Microsoft.App/jobs").Single()["properties"]!["template"]!["containers"]!.AsArray().Single()!["env"]!.AsArray());

    /// <summary>A host builder whose only configuration is <paramref name="settings"/>, as environment variables would give it.</summary>
    private static HostApplicationBuilder Builder(IEnumerable<KeyValuePair<string, string>> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(settings.Select(p => KeyValuePair.Create(p.Key.Replace("__", ":", StringComparison.Ordinal), (string?)p.Value)));
        return builder;
    }

    public static TheoryData<string> Hosts() => ["functions", "worker", "trainer"];

    [Theory]
    [MemberData(nameof(Hosts))]
    public void TheTemplate_GivesEachHostEverySettingItsCodeRequires(string host)
    {
        var (required, given) = host switch
        {
            "functions" => (HostSettings.Functions, FunctionsApp()),
            "worker" => (HostSettings.Worker, Worker()),
            _ => (HostSettings.Trainer, TrainerJob()),
        };
        required.Where(name => !given.ContainsKey(name)).ShouldBeEmpty($"the {host}'s settings in infra/main.bicep lack what its code requires");
        Should.NotThrow(() => HostSettings.Require(host, required, given.GetValueOrDefault));
    }

    [Fact]
    public void IdentityBasedHostStorage_SaysItIsAManagedIdentity()
    {
        FunctionsApp()["AzureWebJobsStorage__credential"].ShouldBe("managedidentity");
    }

    [Fact]
    public void TheWorker_StartsOnTheTemplatesSettings_WithEveryServiceItRuns()
    {
        var builder = Builder(Worker());
        builder.AddPipelineWorker();
        using var host = builder.Build();

        host.Services.GetRequiredService<IBlobStore>().ShouldNotBeNull();
        host.Services.GetRequiredService<IMessageBus>().ShouldNotBeNull();
        host.Services.GetRequiredService<IJobDispatcher>().ShouldNotBeNull("the worker dispatches: the trainer job's id is enough (its image is read from the job)");
        host.Services.GetServices<StageBinding>().Select(s => s.Entity).ShouldBe(StageEntities.All, "Prepare, Publish and job status, each on its entity");
        host.Services.GetRequiredService<TrainerWatch>().ShouldNotBeNull();
        host.Services.GetRequiredService<StageConsumers>().ShouldNotBeNull();
    }

    [Fact]
    public void TheWorker_WithoutASetting_RefusesToStart_NamingIt()
    {
        var builder = Builder(Worker().Where(p => p.Key != "Trainer__JobResourceId"));
        Should.Throw<InvalidOperationException>(() => builder.AddPipelineWorker()).Message.ShouldContain("Trainer__JobResourceId");
    }

    [Fact]
    public void TheFunctionsApp_StartsOnTheTemplatesSettings()
    {
        var builder = Builder(FunctionsApp());
        builder.AddPipelineFunctions();
        using var host = builder.Build();

        host.Services.GetRequiredService<DatasetUploadedHandler>().ShouldNotBeNull();
        host.Services.GetRequiredService<RetrainOnScheduleHandler>().ShouldNotBeNull();
        host.Services.GetRequiredService<PipelineApi>().ShouldNotBeNull();
        host.Services.GetRequiredService<TrainerWatch>().ShouldNotBeNull();
        host.Services.GetRequiredService<IJobDispatcher>().ShouldBeOfType<Serverless.Azure.Dispatch.ContainerAppsJobDispatcher>("the WatchTrainers timer reads the trainer job's executions");
        host.Services.GetServices<StageBinding>().ShouldBeEmpty("the bus-triggered stages run in the worker");
    }

    [Fact]
    public void TheTrainer_InAJobExecutionWithTheTemplatesSettings_RunsOnAzure()
    {
        var environment = TrainerJob();
        environment["JOB_ID"] = "poems-0123";
        environment[HostSettings.JobExecutionVariable] = "tune-dev-trainer-abc12";

        AzureTrainerPorts.FromEnvironment(environment.GetValueOrDefault).ShouldNotBeNull();
        environment.Remove("ServiceBus__fullyQualifiedNamespace");
        Should.Throw<InvalidOperationException>(() => AzureTrainerPorts.FromEnvironment(environment.GetValueOrDefault))
            .Message.ShouldContain("ServiceBus__fullyQualifiedNamespace", customMessage: "in a job execution a missing setting is named, never replaced by an empty local folder");
    }
}
