using System.Text.Json.Nodes;
using Polly.CircuitBreaker;
using Serverless.Azure.Dispatch;
using Serverless.Core.Ports;

namespace Serverless.Azure.Tests.Dispatch;

public sealed class ContainerAppsJobDispatcherTests : IDisposable
{
    private const string JobPath = "/subscriptions/sub-1/resourceGroups/rg-ml/providers/Microsoft.App/jobs/trainer";
    private readonly FakeArm _arm = new(JobPath) { JobTemplate = TrainerTemplate() };
    private readonly FixedCredential _credential = new("token-123");
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _arm.Dispose();
        _http.Dispose();
    }

    /// <summary>The trainer job's template as Bicep writes it: image, resources, every setting (and a probe, which a start request cannot carry).</summary>
    internal static JsonObject TrainerTemplate() => JsonNode.Parse("""
        {
          "containers": [{
            "name": "trainer",
            "image": "acr.azurecr.io/tune-trainer:7",
            "env": [
              {"name": "Storage__blobServiceUri", "value": "https://acct.blob.core.windows.net/"},
              {"name": "ServiceBus__fullyQualifiedNamespace", "value": "ns.servicebus.windows.net"},
              {"name": "AZURE_CLIENT_ID", "value": "00000000-0000-0000-0000-000000000007"},
              {"name": "APPLICATIONINSIGHTS_CONNECTION_STRING", "value": "InstrumentationKey=x"}
            ],
            "resources": {"cpu": 24, "memory": "220Gi"},
            "probes": [{"type": "Liveness", "tcpSocket": {"port": 8080}}]
          }]
        }
        """)!.AsObject();

    private ContainerAppsJobDispatcher Dispatcher(TimeSpan? breakDuration = null, TimeSpan? requestTimeout = null, TimeSpan? startOperationTimeout = null) => new(_http, _credential, new ContainerAppsJobOptions
    {
        SubscriptionId = "sub-1", ResourceGroup = "rg-ml", JobName = "trainer", ArmEndpoint = _arm.Endpoint,
        StartRetryDelay = TimeSpan.FromMilliseconds(20), RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(30),
        StartOperationTimeout = startOperationTimeout ?? TimeSpan.FromSeconds(5),
    }, ContainerAppsJobDispatcher.DefaultResilience(TimeSpan.FromMilliseconds(10), breakDuration));

    private int Starts => _arm.Requests.Count(r => r is { Method: "POST", Path: JobPath + "/start" });

    [Fact]
    public async Task Start_SendsTheJobsWholeContainerPlusJobId_BecauseTheStartTemplateReplacesTheJobs()
    {
        var execution = await Dispatcher().StartAsync("poems-0123", 1);

        var started = _arm.Executions.Single();
        started.Name.ShouldBe(execution);
        var container = started.Template["containers"]!.AsArray().Single()!;
        container["image"]!.GetValue<string>().ShouldBe("acr.azurecr.io/tune-trainer:7");
        container["resources"]!["cpu"]!.GetValue<int>().ShouldBe(24);
        container["resources"]!["memory"]!.GetValue<string>().ShouldBe("220Gi");
        container["probes"].ShouldBeNull("a start request's container (JobExecutionContainer) has no probes");
        var environment = _arm.EnvironmentOf(execution);
        environment["JOB_ID"].ShouldBe("poems-0123");
        environment["JOB_ATTEMPT"].ShouldBe("1");
        foreach (var setting in TrainerTemplate()["containers"]![0]!["env"]!.AsArray())
        {
            environment[setting!["name"]!.GetValue<string>()].ShouldBe(setting["value"]!.GetValue<string>());
        }

        var requests = _arm.Requests.ToArray();
        requests[0].Path.ShouldBe(JobPath, "the job's template is read first: Bicep stays the one source of truth");
        requests.ShouldAllBe(r => r.Authorization == "Bearer token-123" && r.Query.Contains("api-version=2025-01-01"));
        _credential.Scopes.First().ShouldBe([$"{_arm.Endpoint}.default"]);
    }

    [Fact]
    public async Task Start_TheTrainersProcessEnvironmentHoldsEverySettingTheTrainerReads()
    {
        var execution = await Dispatcher().StartAsync("poems-0123", 1);

        // The container runtime starts the trainer with exactly the execution's env: run a real process that way.
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/env") { RedirectStandardOutput = true, UseShellExecute = false };
        start.Environment.Clear();
        foreach (var (name, value) in _arm.EnvironmentOf(execution))
        {
            start.Environment[name] = value;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var seen = (await process.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        await process.WaitForExitAsync();

        seen["JOB_ID"].ShouldBe("poems-0123");
        HostSettings.Require("trainer", HostSettings.Trainer, seen.GetValueOrDefault);
        AzureTrainerPorts.FromEnvironment(seen.GetValueOrDefault).ShouldNotBeNull("the trainer runs on Azure's parts, not on an empty local folder");
    }

    [Fact]
    public async Task Start_202WithOnlyALocation_FollowsIt_ThenFindsTheRunByItsJobId()
    {
        _arm.Starts.Enqueue(FakeArm.StartAnswer.AcceptedWithLocationOnly);

        var execution = await Dispatcher().StartAsync("j-location", 1);

        _arm.Executions.Single().Name.ShouldBe(execution);
        // At least two polls: the first answers 202, so the dispatcher must ask again. Not exactly two: HttpClient itself
        // resends a GET whose reused connection closed before the answer (seen once on a loaded CI machine).
        _arm.Requests.Count(r => r.Path.StartsWith("/operations/", StringComparison.Ordinal)).ShouldBeGreaterThanOrEqualTo(2, "202 once, then done");
        Starts.ShouldBe(1);
    }

    [Fact]
    public async Task Start_ServerErrorAfterTheRunWasCreated_AdoptsIt_InsteadOfStartingASecond()
    {
        _arm.Starts.Enqueue(FakeArm.StartAnswer.CreatedThenServerError);

        var execution = await Dispatcher().StartAsync("j-500", 1);

        _arm.Executions.Count.ShouldBe(1);
        _arm.Executions[0].Name.ShouldBe(execution);
        Starts.ShouldBe(1, "the start is not retried blindly");
    }

    [Fact]
    public async Task Start_TimeoutAfterTheRunWasCreated_AdoptsIt()
    {
        _arm.Hang = TimeSpan.FromSeconds(6);
        _arm.Starts.Enqueue(FakeArm.StartAnswer.CreatedThenNoAnswer);

        // Long enough for a busy machine's ordinary answers, short against the hang.
        var execution = await Dispatcher(requestTimeout: TimeSpan.FromSeconds(1.5)).StartAsync("j-timeout", 1);

        _arm.Executions.Count.ShouldBe(1);
        _arm.Executions[0].Name.ShouldBe(execution);
        Starts.ShouldBe(1);
    }

    [Fact]
    public async Task Start_ASecondStartForTheJob_WhileTheFirstRunIsStillStarting_AdoptsIt()
    {
        // A host claimed the job, started its run and died before recording it; after the claim went stale another
        // host starts the job again while the serverless GPU is still cold-starting the first run.
        var first = await Dispatcher().StartAsync("j-stale", 1);
        _arm.SetStatus(first, "Processing");
        _arm.Starts.Enqueue(FakeArm.StartAnswer.AcceptedWithBody);
        for (var i = 0; i < 3; i++)
        {
            await Dispatcher().StartAsync($"other-{i}", 1);   // more executions than one page of the list
        }

        (await Dispatcher().StartAsync("j-stale", 1)).ShouldBe(first);

        _arm.Executions.Count(e => JobIdOf(e.Template) == "j-stale").ShouldBe(1);
        _arm.Requests.ShouldContain(r => r.Query.Contains("$skip"), "the executions list was followed through nextLink");
    }

    [Fact]
    public async Task Start_TheNextAttempt_WhileTheEarlierRunIsStillExiting_StartsANewOne()
    {
        // The earlier run reported a retryable failure (or was SIGTERMed) and is still shutting down when the retry
        // starts: adopting it would record a run that is about to end.
        var first = await Dispatcher().StartAsync("j-retry", 1);

        var second = await Dispatcher().StartAsync("j-retry", 2);

        second.ShouldNotBe(first);
        _arm.Executions.Count.ShouldBe(2);
        _arm.EnvironmentOf(second)["JOB_ATTEMPT"].ShouldBe("2");
    }

    [Fact]
    public async Task Start_AfterTheAttemptsRunFailed_StartsANewOne()
    {
        var first = await Dispatcher().StartAsync("j-failed", 1);
        _arm.SetStatus(first, "Failed");

        (await Dispatcher().StartAsync("j-failed", 1)).ShouldNotBe(first);
        _arm.Executions.Count.ShouldBe(2);
    }

    [Fact]
    public async Task Start_ServerErrorWithNothingCreated_StartsAgainOnlyAfterTheListShowedNothing()
    {
        _arm.Starts.Enqueue(FakeArm.StartAnswer.ServerErrorNothingCreated);

        var execution = await Dispatcher(startOperationTimeout: TimeSpan.FromMilliseconds(500)).StartAsync("j-500-none", 1);

        Starts.ShouldBe(2);
        _arm.Executions.Single().Name.ShouldBe(execution);
        var requests = _arm.Requests.ToArray();
        var posts = requests.Select((r, i) => (r, i)).Where(p => p.r.Method == "POST").Select(p => p.i).ToArray();
        requests[posts[0]..posts[1]].Count(r => r.Path == JobPath + "/executions").ShouldBeGreaterThanOrEqualTo(1, "the list was read before starting again");
    }

    [Fact]
    public async Task Start_RefusedByArm_IsNotRetried_AndSaysWhy()
    {
        _arm.Starts.Enqueue(FakeArm.StartAnswer.Refused);

        (await Should.ThrowAsync<HttpRequestException>(() => Dispatcher().StartAsync("j-403", 1))).Message.ShouldContain("AuthorizationFailed");

        Starts.ShouldBe(1);
        _arm.Executions.ShouldBeEmpty();
    }

    [Fact]
    public async Task Throttled_NothingWasCreated_SoTheStartIsRepeated()
    {
        _arm.Starts.Enqueue(FakeArm.StartAnswer.Throttled);

        await Dispatcher().StartAsync("j-429", 1);

        Starts.ShouldBe(2);
        _arm.Executions.Count.ShouldBe(1);
    }

    [Fact]
    public async Task NotNow_UntilTheTriesRunOut_IsTheEnvironment_SoTheJobWaitsWhatArmSaid_AndNothingWasStarted()
    {
        foreach (var answer in new[] { FakeArm.StartAnswer.Conflict, FakeArm.StartAnswer.ThrottledLong, FakeArm.StartAnswer.Conflict, FakeArm.StartAnswer.ThrottledLong })
        {
            _arm.Starts.Enqueue(answer);
        }

        var error = await Should.ThrowAsync<EnvironmentUnavailableException>(() => Dispatcher().StartAsync("j-busy", 1));
        error.RetryAfter.ShouldBe(TimeSpan.FromSeconds(1), "what ARM said, for the job's next try");
        error.Message.ShouldContain("throttled (429)");
        Starts.ShouldBe(4);
        _arm.Executions.ShouldBeEmpty("ARM created nothing: a later try starts the one run");

        _arm.Starts.Enqueue(FakeArm.StartAnswer.Conflict);
        await Dispatcher().StartAsync("j-busy", 2);
        _arm.Executions.Count.ShouldBe(1);
    }

    [Fact]
    public async Task ReadsAreRetried_OnServerErrors_ThenReportedWithTheStatus()
    {
        for (var i = 0; i < 5; i++)
        {
            _arm.Then(503, """{"error": "unavailable"}""");
        }

        var error = await Should.ThrowAsync<HttpRequestException>(() => Dispatcher().GetStatusAsync("e1"));
        error.Message.ShouldContain("503");
        _arm.Requests.Count.ShouldBe(5, "the first try and four retries");
    }

    [Fact]
    public async Task ThrottledReads_WaitWhatRetryAfterSays()
    {
        _arm.Then(429, """{"error": {"code": "TooManyRequests"}}""", retryAfter: "1");

        await Dispatcher().CountRunningAsync();

        var requests = _arm.Requests.ToArray();
        requests.Length.ShouldBe(2);
        (requests[1].At - requests[0].At).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900), "Retry-After: 1 was honoured");
    }

    [Fact]
    public async Task ClientErrors_OnReadingTheJob_AreNotRetried()
    {
        _arm.Then(403, """{"error": {"code": "AuthorizationFailed"}}""");
        (await Should.ThrowAsync<HttpRequestException>(() => Dispatcher().StartAsync("j", 1))).Message.ShouldContain("AuthorizationFailed");
        _arm.Requests.Count.ShouldBe(1);
        _arm.Executions.ShouldBeEmpty();
    }

    [Fact]
    public async Task PersistentFailures_OpenTheCircuit_SoCallsFailFastWithoutReachingArm()
    {
        for (var i = 0; i < 20; i++)
        {
            _arm.Then(500, "{}");
        }

        var dispatcher = Dispatcher(breakDuration: TimeSpan.FromMinutes(1));
        await Should.ThrowAsync<Exception>(() => dispatcher.CountRunningAsync());
        await Should.ThrowAsync<Exception>(() => dispatcher.CountRunningAsync());
        var reached = _arm.Requests.Count;

        await Should.ThrowAsync<BrokenCircuitException>(() => dispatcher.StartAsync("j", 1));
        _arm.Requests.Count.ShouldBe(reached, "an open circuit does not call ARM");
    }

    [Fact]
    public async Task Status_Count_AndStop_UseTheExecutionResources()
    {
        var dispatcher = Dispatcher();
        var a = await dispatcher.StartAsync("a", 1);
        var b = await dispatcher.StartAsync("b", 1);
        var c = await dispatcher.StartAsync("c", 1);
        _arm.SetStatus(b, "Succeeded");
        _arm.SetStatus(c, "Processing");

        (await dispatcher.GetStatusAsync(a)).ShouldBe(ExecutionStatus.Running);
        (await dispatcher.GetStatusAsync(b)).ShouldBe(ExecutionStatus.Succeeded);
        (await dispatcher.GetStatusAsync("gone")).ShouldBe(ExecutionStatus.Unknown);
        (await dispatcher.CountRunningAsync()).ShouldBe(2);
        await dispatcher.CancelAsync(a);
        (await dispatcher.GetStatusAsync(a)).ShouldBe(ExecutionStatus.Failed, "a stopped run did not finish");
        _arm.Requests.ShouldContain(r => r.Method == "POST" && r.Path == $"{JobPath}/executions/{a}/stop");
    }

    private static string? JobIdOf(JsonObject template) =>
        template["containers"]![0]!["env"]!.AsArray().FirstOrDefault(e => e!["name"]!.GetValue<string>() == "JOB_ID")?["value"]!.GetValue<string>();
}
