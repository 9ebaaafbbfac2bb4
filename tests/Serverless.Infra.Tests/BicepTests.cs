using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;
using Serverless.Core.Naming;

namespace Serverless.Infra.Tests;

/// <summary>infra/main.bicep compiled and linted by the real bicep compiler, and checked in its compiled ARM JSON.</summary>
public sealed class BicepTests
{
    private static readonly Lazy<(int Code, string Json, string Diagnostics)> Build = new(() => Bicep("build", "--stdout"));

    // Storage Blob Data Owner: the Functions host storage (AzureWebJobsStorage) with an identity needs it (containers,
    // leases, keys in blobs); Storage Blob Data Contributor is not enough there.
    private const string StorageBlobDataOwner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b";

    // Storage Queue Data Contributor: the blob trigger keeps its poison and dispatch queues in the host storage account.
    private const string StorageQueueDataContributor = "974c5e8b-45b9-4653-ba55-5f855dd0fb88";

    // Azure Service Bus Data Owner: the only built-in role with the Manage claim, which KEDA needs to read the active
    // message counts of the entities the worker scales on. Granted on those entities only.
    private const string ServiceBusDataOwner = "090c5cfd-751d-490a-894a-3ce6f1109419";

    private const string AcrPull = "7f951dda-4ed3-4680-a7ca-43fe172d538d";

    private static readonly string[] AllowedRoles =
    [
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe", // Storage Blob Data Contributor
        StorageBlobDataOwner,
        StorageQueueDataContributor,
        "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39", // Azure Service Bus Data Sender
        "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", // Azure Service Bus Data Receiver
        ServiceBusDataOwner,
        AcrPull,
        "b9a307c4-5aa3-4b52-ba60-2b17c136cd7b", // Container Apps Jobs Operator
        "3913510d-42f4-4e42-8a64-420c390055eb", // Monitoring Metrics Publisher
        Reader,
    ];

    // Reader, on the trainer job only, for the Functions app's WatchTrainers timer (it lists executions, never starts one).
    private const string Reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

    // Regions where Container Apps offers the serverless A100 GPU profile (Consumption-GPU-NC24-A100), the trainer's
    // default: https://learn.microsoft.com/azure/container-apps/gpu-serverless-overview#supported-regions
    private static readonly string[] ServerlessA100Regions = ["westus3", "westus", "australiaeast", "swedencentral"];

    internal static string Root
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

    internal static IEnumerable<JsonObject> OfType(string type) => Resources().Where(r => r["type"]?.GetValue<string>() == type);

    private static IEnumerable<JsonObject> Templates()
    {
        var root = JsonNode.Parse(Build.Value.Json)!.AsObject();
        return new[] { root }.Concat(OfType("Microsoft.Resources/deployments").Select(d => d["properties"]!["template"]!.AsObject()));
    }

    /// <summary>The template (the root one or a module's) that declares a resource.</summary>
    private static JsonObject TemplateOf(JsonObject resource) => resource.Parent!.Parent!.AsObject();

    /// <summary>The module deployment of infra/main.bicep with this name.</summary>
    private static JsonObject Module(string name) =>
        OfType("Microsoft.Resources/deployments").Single(d => d["name"]!.GetValue<string>() == name);

    /// <summary>The ARM expression infra/main.bicep passes to a parameter of a module.</summary>
    private static string ModuleArgument(string module, string parameter) =>
        Module(module)["properties"]!["parameters"]![parameter]?["value"]?.GetValue<string>() ?? "";

    /// <summary>The parameter an expression is, exactly ("[parameters('name')]"), or "".</summary>
    private static string ParameterName(string? expression)
    {
        const string Prefix = "[parameters('";
        const string Suffix = "')]";
        return expression is not null && expression.StartsWith(Prefix, StringComparison.Ordinal) && expression.EndsWith(Suffix, StringComparison.Ordinal)
            ? expression[Prefix.Length..^Suffix.Length]
            : "";
    }

    /// <summary>A value as written, or the default of the parameter of its template it is exactly.</summary>
    private static JsonNode? Resolved(JsonObject template, JsonNode? value)
    {
        var name = ParameterName(value is JsonValue text && text.TryGetValue<string>(out var expression) ? expression : null);
        return name.Length > 0 ? template["parameters"]?[name]?["defaultValue"] : value;
    }

    /// <summary>The module and output an expression of infra/main.bicep reads ("[reference(...'module'...).outputs.name.value]").</summary>
    private static (string Module, string Output) OutputReference(string expression)
    {
        const string Deployment = "'Microsoft.Resources/deployments', '";
        const string Outputs = ".outputs.";
        var module = expression.IndexOf(Deployment, StringComparison.Ordinal);
        var output = expression.IndexOf(Outputs, StringComparison.Ordinal);
        if (module < 0 || output < 0 || !expression.EndsWith(".value]", StringComparison.Ordinal))
        {
            return ("", "");
        }

        module += Deployment.Length;
        output += Outputs.Length;
        return (expression[module..expression.IndexOf('\'', module)], expression[output..^".value]".Length]);
    }

    /// <summary>The role id an assignment grants, its roles variable resolved.</summary>
    private static string RoleOf(JsonObject assignment)
    {
        // Role ids are written as variables('roles').name: resolve them through the templates' variables.
        var roleNames = Templates().Select(t => t["variables"]?["roles"]).OfType<JsonObject>()
            .SelectMany(r => r).ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        var expression = assignment["properties"]!["roleDefinitionId"]!.GetValue<string>();
        return roleNames.FirstOrDefault(r => expression.Contains($"variables('roles').{r.Key})", StringComparison.Ordinal)).Value ?? expression;
    }

    /// <summary>The app settings of the Functions app, by name.</summary>
    private static Dictionary<string, string> FunctionsSettings() =>
        OfType("Microsoft.Web/sites").Single()["properties"]!["siteConfig"]!["appSettings"]!.AsArray()
            .ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!["value"]!.GetValue<string>());

    /// <summary>The lines under a dotted key path of a YAML file of the repository (by indentation), trimmed, without comments.</summary>
    private static List<string> YamlBlock(string file, string path)
    {
        static int Indent(string line) => line.Length - line.TrimStart().Length;
        var lines = File.ReadAllLines(Path.Combine(Root, file)).Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#')).ToList();
        var (start, end, indent) = (0, lines.Count, -1);
        foreach (var key in path.Split('.'))
        {
            var at = -1;
            for (var i = start; i < end; i++)
            {
                if (Indent(lines[i]) > indent && lines[i].Trim() == key + ":")
                {
                    at = i;
                    break;
                }
            }

            at.ShouldBeGreaterThanOrEqualTo(0, $"{file} has {path}");
            indent = Indent(lines[at]);
            start = at + 1;
            end = start;
            while (end < lines.Count && Indent(lines[end]) > indent)
            {
                end++;
            }
        }

        return lines.Skip(start).Take(end - start).Select(l => l.Trim()).ToList();
    }

    /// <summary>The environment values a hook script requires (written <c>: "${NAME:?message}"</c>).</summary>
    private static List<string> RequiredVariables(string script)
    {
        const string Marker = ": \"${";
        var names = new List<string>();
        for (var at = script.IndexOf(Marker, StringComparison.Ordinal); at >= 0; at = script.IndexOf(Marker, at + 1, StringComparison.Ordinal))
        {
            var start = at + Marker.Length;
            names.Add(script[start..script.IndexOf(':', start)]);
        }

        return names;
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

            // Allowed too: it names the identity the Functions host sends its own telemetry with (a client id, no secret).
            if (setting["name"]!.GetValue<string>() == "APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
            {
                var value = setting["value"]!.GetValue<string>();
                value.ShouldContain("ClientId=", Case.Sensitive);
                value.ShouldContain("Authorization=AAD", Case.Sensitive);
                foreach (var secret in new[] { "listKeys", "Secret", "Key=", "Password" })
                {
                    value.ShouldNotContain(secret, Case.Insensitive);
                }

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
        foreach (var assignment in assignments)
        {
            var role = RoleOf(assignment);
            AllowedRoles.ShouldContain(r => role.Contains(r, StringComparison.Ordinal), $"role {role} is not on the allowed list");
            assignment["scope"].ShouldNotBeNull("every role assignment is scoped to the resource it is for, not the subscription");
            assignment["properties"]!["principalType"]!.GetValue<string>().ShouldBe("ServicePrincipal");
        }

        var operatorAssignments = assignments.Where(a => RoleOf(a).StartsWith("b9a307c4", StringComparison.Ordinal)).ToList();
        operatorAssignments.Count.ShouldBe(1, "only the dispatcher may start jobs");
        operatorAssignments[0]["scope"]!.ToJsonString().ShouldContain("Microsoft.App/jobs");
        var readers = assignments.Where(a => RoleOf(a).Contains(Reader, StringComparison.Ordinal)).ToList();
        readers.Count.ShouldBe(1, "only the Functions app's trainer watch reads the trainer job");
        readers[0]["scope"]!.ToJsonString().ShouldContain("Microsoft.App/jobs", customMessage: "Reader on the trainer job, never wider");
    }

    [Theory]
    [InlineData("functionsPrincipalId", "requestsQueue")]   // Ingest, Schedule and the API's submit send FineTuneRequested
    [InlineData("functionsPrincipalId", "trainingTopic")]   // WatchTrainers reports a lost trainer as TrainingFailed
    [InlineData("workerPrincipalId", "requestsQueue")]      // Dispatch sends itself a later request when no slot is free; Publish schedules retries
    [InlineData("workerPrincipalId", "trainingTopic")]      // the worker's trainer watch
    [InlineData("workerPrincipalId", "modelTopic")]         // Publish (ModelPublished, ModelRejected), Prepare (DatasetRejected)
    [InlineData("trainerPrincipalId", "trainingTopic")]     // TrainingStarted, TrainingProgress, TrainingCompleted, TrainingFailed
    public void EveryHost_MaySendToEveryEntityItsCodePublishesTo(string principal, string entity)
    {
        const string Sender = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39";
        OfType("Microsoft.Authorization/roleAssignments").ShouldContain(
            a => RoleOf(a).Contains(Sender, StringComparison.Ordinal)
                && a["scope"]!.GetValue<string>().Contains($"parameters('{entity}')", StringComparison.Ordinal)
                && a["properties"]!["principalId"]!.GetValue<string>().Contains($"parameters('{principal}')", StringComparison.Ordinal),
            $"{principal} holds Azure Service Bus Data Sender on {entity}");
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
        // The one filtered subscription (publisher); its filter is its $Default rule (FilteredSubscriptions_FilterWithTheirDefaultRule).
        var rule = OfType("Microsoft.ServiceBus/namespaces/topics/subscriptions/rules").Single();
        rule["name"]!.GetValue<string>().ShouldContain($"'{Entities.PublisherSubscription}', '$Default'", Case.Sensitive);
        rule["properties"]!["sqlFilter"]!["sqlExpression"]!.GetValue<string>().ShouldBe("type IN ('TrainingCompleted', 'TrainingFailed')");
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
        OfType("Microsoft.EventGrid/systemTopics").Single()["properties"]!["topicType"]!.GetValue<string>().ShouldBe("Microsoft.Storage.StorageAccounts");
    }

    // Issue 10, point 3.
    [Fact]
    public void Trainer_IsNotRetriedByThePlatform_AndTheWorkerGetsItsShutdownTimeout()
    {
        // The pipeline retries a failed training itself; a platform retry would re-run a trainer that already reported failure.
        OfType("Microsoft.App/jobs").Single()["properties"]!["configuration"]!["replicaRetryLimit"]!.GetValue<int>().ShouldBe(0);
        var worker = OfType("Microsoft.App/containerApps").Single();
        var grace = Resolved(TemplateOf(worker), worker["properties"]!["template"]!["terminationGracePeriodSeconds"]);
        grace.ShouldNotBeNull("the worker sets its termination grace period (the platform default is 30 s)");
        grace!.GetValue<int>().ShouldBe(60, "the worker host's shutdown timeout is 60 s");
    }

    // Issue 10, point 5.
    [Fact]
    public void Worker_ScalesOnEveryEntityItConsumes_WithTheBareNamespaceName()
    {
        var worker = OfType("Microsoft.App/containerApps").Single();
        var template = TemplateOf(worker);
        var consumed = new List<string>();
        foreach (var rule in worker["properties"]!["template"]!["scale"]!["rules"]!.AsArray().Select(r => r!["custom"]!.AsObject()))
        {
            rule["type"]!.GetValue<string>().ShouldBe("azure-servicebus");
            rule["identity"]!.GetValue<string>().ShouldBe("[parameters('workerIdentityId')]", "KEDA reads the counts with the worker's identity");
            var metadata = rule["metadata"]!.AsObject();
            string Name(string key) => Resolved(template, metadata[key])?.GetValue<string>() ?? "";
            consumed.Add(metadata["queueName"] is not null ? $"queue {Name("queueName")}" : $"topic {Name("topicName")}/{Name("subscriptionName")}");

            // KEDA appends .servicebus.windows.net to `namespace` itself: it must be the bare namespace name, here the
            // name output of the Service Bus module, which is the namespace resource's name parameter.
            var parameter = ParameterName(metadata["namespace"]?.GetValue<string>());
            parameter.ShouldNotBeNullOrEmpty("the namespace comes from a parameter of the Container Apps module");
            var argument = ModuleArgument("containerapps", parameter);
            argument.ShouldNotContain("fullyQualifiedNamespace", Case.Insensitive);
            argument.ShouldNotContain("servicebus.windows.net", Case.Insensitive);
            OutputReference(argument).ShouldBe(("servicebus", "name"));
        }

        string[] expected =
        [
            $"queue {Entities.FineTuneRequests}",
            $"topic {Entities.TrainingEvents}/{Entities.PublisherSubscription}",
            $"topic {Entities.TrainingEvents}/{Entities.StatusSubscription}",
        ];
        consumed.ShouldBe(expected, ignoreOrder: true);
        var bus = Templates().Single(t => t["outputs"]?["fullyQualifiedNamespace"] is not null);
        bus["outputs"]!["name"]!["value"]!.GetValue<string>().ShouldBe("[parameters('name')]");
        bus["resources"]!.AsArray().Single(r => r!["type"]!.GetValue<string>() == "Microsoft.ServiceBus/namespaces")!["name"]!
            .GetValue<string>().ShouldBe("[parameters('name')]");

        // The entity names come from the Service Bus module, so the rules follow its entities.
        foreach (var (parameter, output) in new[] { ("requestsQueue", "requestsQueueName"), ("trainingTopic", "trainingTopicName"), ("publisherSubscription", "publisherSubscriptionName"), ("statusSubscription", "statusSubscriptionName") })
        {
            OutputReference(ModuleArgument("containerapps", parameter)).ShouldBe(("servicebus", output));
        }
    }

    // Issue 10, point 5.
    [Fact]
    public void ServiceBusDataOwner_IsGrantedToTheWorkerOnlyOnTheEntitiesItScalesOn()
    {
        var owners = OfType("Microsoft.Authorization/roleAssignments").Where(a => RoleOf(a).Contains(ServiceBusDataOwner, StringComparison.Ordinal)).ToList();
        owners.ShouldAllBe(a => a["properties"]!["principalId"]!.GetValue<string>() == "[parameters('workerPrincipalId')]");
        string[] expected =
        [
            "[resourceId('Microsoft.ServiceBus/namespaces/queues', parameters('serviceBusName'), parameters('requestsQueue'))]",
            "[resourceId('Microsoft.ServiceBus/namespaces/topics/subscriptions', parameters('serviceBusName'), parameters('trainingTopic'), parameters('publisherSubscription'))]",
            "[resourceId('Microsoft.ServiceBus/namespaces/topics/subscriptions', parameters('serviceBusName'), parameters('trainingTopic'), parameters('statusSubscription'))]",
        ];
        owners.Select(a => a["scope"]!.GetValue<string>()).ToList().ShouldBe(expected, ignoreOrder: true);

        // Those parameters are the Service Bus module's entities.
        var module = TemplateOf(owners[0]).Parent!.Parent!["name"]!.GetValue<string>();
        foreach (var (parameter, output) in new[] { ("requestsQueue", "requestsQueueName"), ("trainingTopic", "trainingTopicName"), ("publisherSubscription", "publisherSubscriptionName"), ("statusSubscription", "statusSubscriptionName") })
        {
            OutputReference(ModuleArgument(module, parameter)).ShouldBe(("servicebus", output));
        }
    }

    // Issue 10, point 6.
    [Fact]
    public void StorageEvents_AreSubscribedAfterDeployment_ByTheHook()
    {
        OfType("Microsoft.EventGrid/systemTopics/eventSubscriptions").ShouldBeEmpty("the webhook needs the deployed host's blobs_extension key: infra/hooks/postdeploy.sh subscribes it");
        Build.Value.Json.ShouldNotContain("listKeys", Case.Insensitive, "the template reads no keys");
        var outputs = JsonNode.Parse(Build.Value.Json)!["outputs"]!.AsObject();
        outputs.ContainsKey("AZURE_STORAGE_EVENTS_TOPIC").ShouldBeTrue("the hook finds the system topic through an output");

        var hook = File.ReadAllText(Path.Combine(Root, "infra", "hooks", "postdeploy.sh"));
        hook.ShouldStartWith("#!/usr/bin/env bash", Case.Sensitive);
        foreach (var part in new[]
        {
            "set -euo pipefail", "az functionapp keys list", "systemKeys.blobs_extension", "/runtime/webhooks/blobs?functionName=Host.Functions.",
            "DatasetUploaded", "Microsoft.Storage.BlobCreated", "/blobServices/default/containers/", "az eventgrid system-topic event-subscription show",
        })
        {
            hook.ShouldContain(part, Case.Sensitive);
        }

        // Every value it reads is an output of the template: azd exports them to hooks.
        var variables = RequiredVariables(hook);
        variables.ShouldNotBeEmpty();
        foreach (var variable in variables)
        {
            outputs.ContainsKey(variable).ShouldBeTrue($"infra/main.bicep outputs {variable}, which postdeploy.sh reads");
        }

        YamlBlock("azure.yaml", "hooks.postdeploy.posix").ShouldContain("run: bash ./infra/hooks/postdeploy.sh");
    }

    // Issue 10, point 7.
    [Fact]
    public void Azd_DeploysWhatItProvisions()
    {
        // azd finds the resource of each service by its azd-service-name tag.
        OfType("Microsoft.Web/sites").Single()["tags"]!.GetValue<string>().ShouldContain("createObject('azd-service-name', 'functions')", Case.Sensitive);
        OfType("Microsoft.App/containerApps").Single()["tags"]!.GetValue<string>().ShouldContain("createObject('azd-service-name', 'worker')", Case.Sensitive);
        var functions = YamlBlock("azure.yaml", "services.functions");
        functions.ShouldContain("host: function");
        functions.ShouldContain("project: ./functions/Serverless.Functions");
        var worker = YamlBlock("azure.yaml", "services.worker");
        worker.ShouldContain("host: containerapp");
        worker.ShouldContain("project: ./functions/Serverless.Worker");
        var docker = YamlBlock("azure.yaml", "services.worker.docker");
        docker.ShouldContain("path: ./Dockerfile");
        docker.ShouldContain("context: ../..");
        docker.ShouldContain("remoteBuild: true");
        // docker.path and docker.context are relative to the service's project: its Dockerfile, the repository root.
        var project = Path.Combine(Root, "functions", "Serverless.Worker");
        File.Exists(Path.Combine(project, "Dockerfile")).ShouldBeTrue();
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Combine(project, "..", ".."))).ShouldBe(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Root)));

        // Images come from azd, not from a literal registry.
        var prod = File.ReadAllText(Path.Combine(Root, "infra", "env", "prod.bicepparam"));
        prod.ShouldNotContain("REGISTRY", Case.Sensitive);
        prod.ShouldNotContain("azurecr.io", Case.Insensitive);
        var parameters = JsonNode.Parse(File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json")))!["parameters"]!;
        (parameters["workerImage"]?["value"]?.GetValue<string>() ?? "").ShouldStartWith("${SERVICE_WORKER_IMAGE_NAME=", Case.Sensitive);
        (parameters["trainerImage"]?["value"]?.GetValue<string>() ?? "").ShouldStartWith("${TRAINER_IMAGE=", Case.Sensitive);

        // The trainer job is built and pointed at its image by the predeploy hook, which records TRAINER_IMAGE for azd.
        var hook = File.ReadAllText(Path.Combine(Root, "infra", "hooks", "predeploy.sh"));
        foreach (var part in new[]
        {
            "set -euo pipefail", "az acr build", "src/Serverless.Trainer/Dockerfile", "LIBTORCH=", "BASE=", "az containerapp job update",
            "azd env set TRAINER_IMAGE",
        })
        {
            hook.ShouldContain(part, Case.Sensitive);
        }

        File.ReadAllText(Path.Combine(Root, "src", "Serverless.Trainer", "Dockerfile")).ShouldContain("libtorch-cuda-12.8-linux-x64", Case.Sensitive);
        hook.ShouldContain("libtorch-cuda-12.8-linux-x64", Case.Sensitive);
        YamlBlock("azure.yaml", "hooks.predeploy.posix").ShouldContain("run: bash ./infra/hooks/predeploy.sh");
        var outputs = JsonNode.Parse(Build.Value.Json)!["outputs"]!.AsObject();
        foreach (var variable in RequiredVariables(hook).Append("AZURE_CONTAINER_REGISTRY_ENDPOINT").Append("AZURE_FUNCTIONS_APP_NAME"))
        {
            outputs.ContainsKey(variable).ShouldBeTrue($"infra/main.bicep outputs {variable}");
        }

        // A container app or job pulls its image while it is created: AcrPull must be granted before.
        var pulls = OfType("Microsoft.Authorization/roleAssignments").Where(a => RoleOf(a).Contains(AcrPull, StringComparison.Ordinal)).ToList();
        pulls.ShouldNotBeEmpty();
        var dependsOn = Module("containerapps")["dependsOn"]?.AsArray().Select(d => d!.GetValue<string>()).ToList() ?? [];
        foreach (var pull in pulls)
        {
            var module = TemplateOf(pull).Parent!.Parent!["name"]!.GetValue<string>();
            module.ShouldNotBe("containerapps");
            dependsOn.ShouldContain($"[resourceId('Microsoft.Resources/deployments', '{module}')]", $"the Container Apps module waits for {module}, which grants AcrPull");
        }
    }

    // Issue 10, point 8.
    [Fact]
    public void BlobTrigger_HostStorageConnection_HasItsQueues_AndTheRolesItNeeds()
    {
        var settings = FunctionsSettings();
        settings["AzureWebJobsStorage__credential"].ShouldBe("managedidentity");
        settings["AzureWebJobsStorage__clientId"].ShouldBe(settings["AZURE_CLIENT_ID"]);
        settings.ContainsKey("AzureWebJobsStorage__blobServiceUri").ShouldBeTrue("identity-based host storage: blobs");
        settings.ContainsKey("AzureWebJobsStorage__queueServiceUri").ShouldBeTrue("identity-based host storage: the blob trigger's queues");
        var parameter = ParameterName(settings["AzureWebJobsStorage__queueServiceUri"]);
        parameter.ShouldNotBeNullOrEmpty("the queue endpoint comes from a parameter of the Functions module");
        var (module, output) = OutputReference(ModuleArgument("functions", parameter));
        module.ShouldBe("storage");
        Templates().Single(t => t["parameters"]?["containers"] is not null)["outputs"]![output]!["value"]!.GetValue<string>()
            .ShouldEndWith(".primaryEndpoints.queue]", Case.Sensitive);

        var functionsRoles = OfType("Microsoft.Authorization/roleAssignments")
            .Where(a => a["properties"]!["principalId"]!.GetValue<string>() == "[parameters('functionsPrincipalId')]").ToList();
        foreach (var role in new[] { StorageBlobDataOwner, StorageQueueDataContributor })
        {
            var assignment = functionsRoles.Where(a => RoleOf(a).Contains(role, StringComparison.Ordinal)).ToList();
            assignment.Count.ShouldBe(1, $"the Functions identity holds role {role}");
            assignment[0]["scope"]!.GetValue<string>().ShouldBe("[resourceId('Microsoft.Storage/storageAccounts', parameters('storageAccountName'))]");
        }
    }

    // Issue 10, point 9.
    [Fact]
    public void FilteredSubscriptions_FilterWithTheirDefaultRule()
    {
        // ARM creates every subscription with a $Default rule (1=1); any other rule beside it is OR-ed with it.
        var rules = OfType("Microsoft.ServiceBus/namespaces/topics/subscriptions/rules").Select(r => r["name"]!.GetValue<string>()).ToList();
        rules.ShouldNotBeEmpty();
        rules.ShouldAllBe(name => name.EndsWith(", '$Default')]", StringComparison.Ordinal));
        rules.Select(name => name[..name.LastIndexOf(',')]).ShouldBeUnique();
    }

    // Issue 10, point 10.
    [Fact]
    public void FunctionsHostTelemetry_NamesItsIdentity()
    {
        var settings = FunctionsSettings();
        settings.ContainsKey("APPLICATIONINSIGHTS_AUTHENTICATION_STRING").ShouldBeTrue("local auth is off: the host names the identity its telemetry authenticates with");
        settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].ShouldBe("[format('ClientId={0};Authorization=AAD', parameters('identityClientId'))]");
        settings["AZURE_CLIENT_ID"].ShouldBe("[parameters('identityClientId')]");
    }

    // Issue 10, point 13.
    [Fact]
    public void Location_IsLimitedToServerlessGpuRegions()
    {
        var location = JsonNode.Parse(Build.Value.Json)!["parameters"]!["location"]!;
        var allowed = location["allowedValues"]?.AsArray().Select(v => v!.GetValue<string>()).ToList() ?? [];
        allowed.ShouldNotBeEmpty("location is limited to the regions of the serverless GPU profile");
        allowed.ShouldBeSubsetOf(ServerlessA100Regions);
        allowed.ShouldContain(location["defaultValue"]!.GetValue<string>());
        var environment = OfType("Microsoft.App/managedEnvironments").Single();
        environment["properties"]!["workloadProfiles"]!.AsArray()
            .Select(p => Resolved(TemplateOf(environment), p!["workloadProfileType"])?.GetValue<string>() ?? "")
            .ShouldContain("Consumption-GPU-NC24-A100");
    }
}
