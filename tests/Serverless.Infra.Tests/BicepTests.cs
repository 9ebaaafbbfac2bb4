using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;
using Serverless.Core.Naming;

namespace Serverless.Infra.Tests;

/// <summary>infra/main.bicep compiled and linted by the real bicep compiler, and checked in its compiled ARM JSON.</summary>
public sealed class BicepTests
{
    private static readonly Lazy<(int Code, string Json, string Diagnostics)> Build = new(() => Bicep("build", "--stdout"));
    private static readonly string[] AllowedRoles =
    [
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe", // Storage Blob Data Contributor
        "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", // Azure Service Bus Data Sender
        "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", // Azure Service Bus Data Receiver
        "7f951dda-4ed3-4680-a7ca-43fe172d538d", // AcrPull
        "b9a307c4-5aa3-4b52-ba60-2b17c136cd7b", // Container Apps Jobs Operator
        "3913510d-42f4-4e42-8a64-420c390055eb", // Monitoring Metrics Publisher
    ];

    private static string Root
    {
        get
        {
            var dir = AppContext.BaseDirectory;
            while (!File.Exists(Path.Combine(dir, "Serverless.sln")))
            {
                dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("Serverless.sln not found above the test binaries.");
            }

            return dir;
        }
    }

    private static (int Code, string Stdout, string Stderr) Bicep(string verb, params string[] extra) =>
        BicepOn(verb, verb == "build-params" ? extra[0] : Path.Combine(Root, "infra", "main.bicep"), verb == "build-params" ? extra[1..] : extra);

    private static (int Code, string Stdout, string Stderr) BicepOn(string verb, string file, params string[] extra)
    {
        var bicep = typeof(BicepTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "BicepPath").Value!;
        File.Exists(bicep).ShouldBeTrue($"the bicep compiler from the Azure.Bicep.CommandLine.linux-x64 package is at {bicep}");
        var start = new ProcessStartInfo(bicep) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        start.ArgumentList.Add(verb);
        start.ArgumentList.Add(file);
        foreach (var e in extra)
        {
            start.ArgumentList.Add(e);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Every resource of the template and its modules (nested deployments).</summary>
    private static List<JsonObject> Resources()
    {
        var all = new List<JsonObject>();
        void Walk(JsonNode? template)
        {
            var resources = template?["resources"];
            IEnumerable<JsonNode?> items = resources switch
            {
                JsonArray array => array,
                JsonObject map => map.Select(p => p.Value),
                _ => [],
            };
            foreach (var resource in items.OfType<JsonObject>())
            {
                all.Add(resource);
                if (resource["type"]?.GetValue<string>() == "Microsoft.Resources/deployments")
                {
                    Walk(resource["properties"]?["template"]);
                }
            }
        }

        Walk(JsonNode.Parse(Build.Value.Json));
        return all;
    }

    private static IEnumerable<JsonObject> OfType(string type) => Resources().Where(r => r["type"]?.GetValue<string>() == type);

    private static IEnumerable<JsonObject> Templates()
    {
        var root = JsonNode.Parse(Build.Value.Json)!.AsObject();
        return new[] { root }.Concat(OfType("Microsoft.Resources/deployments").Select(d => d["properties"]!["template"]!.AsObject()));
    }

    [Fact]
    public void Build_CompilesWithoutErrorsOrWarnings()
    {
        var (code, json, diagnostics) = Build.Value;
        code.ShouldBe(0, diagnostics);
        diagnostics.Trim().ShouldBeEmpty();
        JsonNode.Parse(json)!["resources"].ShouldNotBeNull();
    }

    [Theory]
    [InlineData("dev")]
    [InlineData("prod")]
    public void EnvironmentParameters_Compile(string environment)
    {
        var (code, stdout, stderr) = Bicep("build-params", Path.Combine(Root, "infra", "env", $"{environment}.bicepparam"), "--stdout");
        code.ShouldBe(0, stderr);
        stderr.Trim().ShouldBeEmpty();
        JsonNode.Parse(stdout)!["parametersJson"].ShouldNotBeNull();
    }

    [Fact]
    public void Lint_ReportsNothing()
    {
        var (code, stdout, stderr) = Bicep("lint");
        code.ShouldBe(0, stderr);
        (stdout + stderr).Trim().ShouldBeEmpty();
    }

    [Fact]
    public void Outputs_HoldNoKeysOrConnectionStrings()
    {
        foreach (var template in Templates())
        {
            foreach (var (name, output) in template["outputs"]?.AsObject() ?? [])
            {
                var text = name + " " + output!.ToJsonString();
                text.ShouldNotContain("listKeys", Case.Insensitive);
                text.ShouldNotContain("connectionString", Case.Insensitive);
                text.ShouldNotContain("key", Case.Insensitive, $"output {name}");
            }
        }
    }

    [Fact]
    public void AppSettingsAndEnvironments_HoldNoSecrets()
    {
        var settings = OfType("Microsoft.Web/sites").SelectMany(s => s["properties"]!["siteConfig"]!["appSettings"]!.AsArray())
            .Concat(Resources().Where(r => r["type"]?.GetValue<string>() is "Microsoft.App/jobs" or "Microsoft.App/containerApps")
                .SelectMany(r => r["properties"]!["template"]!["containers"]!.AsArray().SelectMany(c => c!["env"]!.AsArray())))
            .ToList();
        settings.Count.ShouldBeGreaterThan(5);
        foreach (var setting in settings)
        {
            // The one connection string allowed: Application Insights' endpoint identifier. It grants nothing while
            // local auth is off on the component (asserted in LocalAuth_IsDisabledEverywhere); ingestion needs the
            // identity's Monitoring Metrics Publisher role.
            if (setting!["name"]!.GetValue<string>() == "APPLICATIONINSIGHTS_CONNECTION_STRING")
            {
                setting["value"]!.GetValue<string>().ShouldContain("ConnectionString");
                setting["value"]!.GetValue<string>().ShouldNotContain("listKeys");
                continue;
            }

            var text = setting.ToJsonString();
            foreach (var secret in new[] { "listKeys", "AccountKey", "SharedAccessKey", "ConnectionString", "secretRef" })
            {
                text.ShouldNotContain(secret, Case.Insensitive);
            }
        }

        settings.ShouldContain(s => s!["name"]!.GetValue<string>() == "AzureWebJobsStorage__blobServiceUri", "identity-based storage connection");
        settings.Count(s => s!["name"]!.GetValue<string>() == "APPLICATIONINSIGHTS_CONNECTION_STRING").ShouldBe(3, "every host exports telemetry");
        settings.ShouldContain(s => s!["name"]!.GetValue<string>() == "ServiceBus__fullyQualifiedNamespace", "identity-based Service Bus connection");
    }

    [Fact]
    public void Storage_NoSharedKeyNoPublicAccessTls12_AndRegistryVersioned()
    {
        var account = OfType("Microsoft.Storage/storageAccounts").Single()["properties"]!;
        account["allowSharedKeyAccess"]!.GetValue<bool>().ShouldBeFalse();
        account["allowBlobPublicAccess"]!.GetValue<bool>().ShouldBeFalse();
        account["minimumTlsVersion"]!.GetValue<string>().ShouldBe("TLS1_2");
        account["supportsHttpsTrafficOnly"]!.GetValue<bool>().ShouldBeTrue();
        var blobs = OfType("Microsoft.Storage/storageAccounts/blobServices").Single()["properties"]!;
        blobs["isVersioningEnabled"]!.GetValue<bool>().ShouldBeTrue();
        blobs["deleteRetentionPolicy"]!["enabled"]!.GetValue<bool>().ShouldBeTrue();
        OfType("Microsoft.Storage/storageAccounts/blobServices/containers")
            .ShouldAllBe(c => c["properties"]!["publicAccess"]!.GetValue<string>() == "None");
    }

    [Fact]
    public void LocalAuth_IsDisabledEverywhere()
    {
        var bus = OfType("Microsoft.ServiceBus/namespaces").Single()["properties"]!;
        bus["disableLocalAuth"]!.GetValue<bool>().ShouldBeTrue();
        bus["minimumTlsVersion"]!.GetValue<string>().ShouldBe("1.2");
        OfType("Microsoft.Insights/components").Single()["properties"]!["DisableLocalAuth"]!.GetValue<bool>().ShouldBeTrue();
        OfType("Microsoft.ContainerRegistry/registries").Single()["properties"]!["adminUserEnabled"]!.GetValue<bool>().ShouldBeFalse();
        var site = OfType("Microsoft.Web/sites").Single()["properties"]!;
        site["httpsOnly"]!.GetValue<bool>().ShouldBeTrue();
        site["siteConfig"]!["minTlsVersion"]!.GetValue<string>().ShouldBe("1.2");
    }

    [Fact]
    public void ComputeRunsAsUserAssignedManagedIdentities_WithNoSecretsOrPasswords()
    {
        var compute = OfType("Microsoft.Web/sites").Concat(OfType("Microsoft.App/containerApps")).Concat(OfType("Microsoft.App/jobs")).ToList();
        compute.Count.ShouldBe(3, "the Functions app, the worker and the trainer job");
        foreach (var resource in compute)
        {
            var name = resource["name"]!.ToJsonString();
            resource["identity"]!["type"]!.GetValue<string>().ShouldBe("UserAssigned", name);
            var configuration = resource["properties"]!["configuration"];
            configuration?["secrets"].ShouldBeNull($"{name} holds no secrets");
            foreach (var registry in configuration?["registries"]?.AsArray() ?? [])
            {
                registry!["identity"].ShouldNotBeNull($"{name} pulls images with its identity");
                registry["passwordSecretRef"].ShouldBeNull($"{name} has no registry password");
            }

            foreach (var rule in configuration?["template"]?["scale"]?["rules"]?.AsArray() ?? resource["properties"]?["template"]?["scale"]?["rules"]?.AsArray() ?? [])
            {
                rule!["custom"]?["auth"].ShouldBeNull($"{name}'s scale rule authenticates with its identity, not a secret");
            }
        }

        OfType("Microsoft.Web/sites").Single()["properties"]!["siteConfig"]!["ftpsState"]!.GetValue<string>().ShouldBe("Disabled");
        var publishing = OfType("Microsoft.Web/sites/basicPublishingCredentialsPolicies").ToList();
        publishing.Count.ShouldBe(2, "FTP and SCM basic authentication are both turned off");
        publishing.ShouldAllBe(p => !p["properties"]!["allow"]!.GetValue<bool>());
    }

    [Fact]
    public void RoleAssignments_UseAllowedRoles_ScopedToResources()
    {
        var assignments = OfType("Microsoft.Authorization/roleAssignments").ToList();
        assignments.Count.ShouldBeGreaterThanOrEqualTo(8);
        // Role ids are written as variables('roles').name: resolve them through the templates' variables.
        var roleNames = Templates().Select(t => t["variables"]?["roles"]).OfType<JsonObject>()
            .SelectMany(r => r).ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        string Role(JsonObject assignment)
        {
            var expression = assignment["properties"]!["roleDefinitionId"]!.GetValue<string>();
            return roleNames.FirstOrDefault(r => expression.Contains($"variables('roles').{r.Key})", StringComparison.Ordinal)).Value ?? expression;
        }

        foreach (var assignment in assignments)
        {
            var role = Role(assignment);
            AllowedRoles.ShouldContain(r => role.Contains(r, StringComparison.Ordinal), $"role {role} is not on the allowed list");
            assignment["scope"].ShouldNotBeNull("every role assignment is scoped to the resource it is for, not the subscription");
            assignment["properties"]!["principalType"]!.GetValue<string>().ShouldBe("ServicePrincipal");
        }

        var operatorAssignments = assignments.Where(a => Role(a).StartsWith("b9a307c4", StringComparison.Ordinal)).ToList();
        operatorAssignments.Count.ShouldBe(1, "only the dispatcher may start jobs");
        operatorAssignments[0]["scope"]!.ToJsonString().ShouldContain("Microsoft.App/jobs");
    }

    [Fact]
    public void EntityNames_AreTheOnesTheCodeUses()
    {
        var bus = Templates().Single(t => t["parameters"]?["requestsQueue"] is not null && t["parameters"]?["trainingTopic"] is not null && t["parameters"]?["modelTopic"] is not null
            && t.ToJsonString().Contains("Microsoft.ServiceBus/namespaces/queues\"", StringComparison.Ordinal) && !t.ToJsonString().Contains("roleAssignments", StringComparison.Ordinal));
        bus["parameters"]!["requestsQueue"]!["defaultValue"]!.GetValue<string>().ShouldBe(Entities.FineTuneRequests);
        bus["parameters"]!["trainingTopic"]!["defaultValue"]!.GetValue<string>().ShouldBe(Entities.TrainingEvents);
        bus["parameters"]!["modelTopic"]!["defaultValue"]!.GetValue<string>().ShouldBe(Entities.ModelEvents);
        var subscriptions = OfType("Microsoft.ServiceBus/namespaces/topics/subscriptions").Select(s => s["name"]!.GetValue<string>()).ToList();
        subscriptions.ShouldContain(n => n.Contains($"'{Entities.PublisherSubscription}'", StringComparison.Ordinal));
        subscriptions.ShouldContain(n => n.Contains($"'{Entities.StatusSubscription}'", StringComparison.Ordinal));
        var rule = OfType("Microsoft.ServiceBus/namespaces/topics/subscriptions/rules").Single()["properties"]!["sqlFilter"]!["sqlExpression"]!.GetValue<string>();
        rule.ShouldBe("type IN ('TrainingCompleted', 'TrainingFailed')");
        var queue = OfType("Microsoft.ServiceBus/namespaces/queues").Single()["properties"]!;
        queue["requiresDuplicateDetection"]!.GetValue<bool>().ShouldBeTrue();
        queue["deadLetteringOnMessageExpiration"]!.GetValue<bool>().ShouldBeTrue();
        // The hosts dead-letter a failing message themselves on this delivery, with its error: the broker must agree.
        OfType("Microsoft.ServiceBus/namespaces/queues").Concat(OfType("Microsoft.ServiceBus/namespaces/topics/subscriptions"))
            .ShouldAllBe(e => e["properties"]!["maxDeliveryCount"]!.GetValue<int>() == Serverless.Core.Ports.EntityOptions.DefaultMaxDeliveryCount);
        var storage = Templates().Single(t => t["parameters"]?["containers"] is not null);
        storage["parameters"]!["containers"]!["defaultValue"]!.AsArray().Select(c => c!.GetValue<string>())
            .ShouldBe([Containers.Datasets, Containers.BaseModels, Containers.Jobs, Containers.Prepared, Containers.Checkpoints, Containers.Registry, Containers.Receipts]);
    }

    [Fact]
    public void Trainer_IsAManualGpuJob_AndTheWorkerScalesToZeroOnTheQueue()
    {
        var job = OfType("Microsoft.App/jobs").Single()["properties"]!;
        job["workloadProfileName"]!.GetValue<string>().ShouldBe("gpu");
        job["configuration"]!["triggerType"]!.GetValue<string>().ShouldBe("Manual");
        job["configuration"]!["replicaTimeout"].ShouldNotBeNull();
        job["configuration"]!["replicaRetryLimit"].ShouldNotBeNull();
        var worker = OfType("Microsoft.App/containerApps").Single()["properties"]!["template"]!["scale"]!;
        worker["minReplicas"]!.GetValue<int>().ShouldBe(0);
        var rule = worker["rules"]![0]!["custom"]!;
        rule["type"]!.GetValue<string>().ShouldBe("azure-servicebus");
        rule["identity"].ShouldNotBeNull("KEDA authenticates with the worker's managed identity");
        OfType("Microsoft.EventGrid/systemTopics/eventSubscriptions").Single()["properties"]!["filter"]!["includedEventTypes"]![0]!
            .GetValue<string>().ShouldBe("Microsoft.Storage.BlobCreated");
    }
}
