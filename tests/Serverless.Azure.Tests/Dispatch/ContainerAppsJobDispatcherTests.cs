using System.Text.Json.Nodes;
using Polly.CircuitBreaker;
using Serverless.Azure.Dispatch;
using Serverless.Core.Ports;

namespace Serverless.Azure.Tests.Dispatch;

public sealed class ContainerAppsJobDispatcherTests : IDisposable
{
    private const string JobPath = "/subscriptions/sub-1/resourceGroups/rg-ml/providers/Microsoft.App/jobs/trainer";
    private readonly FakeArm _arm = new();
    private readonly FixedCredential _credential = new("token-123");
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _arm.Dispose();
        _http.Dispose();
    }

    private ContainerAppsJobDispatcher Dispatcher(TimeSpan? breakDuration = null) => new(_http, _credential, new ContainerAppsJobOptions
    {
        SubscriptionId = "sub-1", ResourceGroup = "rg-ml", JobName = "trainer", Image = "acr.azurecr.io/trainer:1", ArmEndpoint = _arm.Endpoint,
    }, ContainerAppsJobDispatcher.DefaultResilience(TimeSpan.FromMilliseconds(10), breakDuration));

    [Fact]
    public async Task Start_PostsTheTemplateOverrideWithOnlyTheJobId_AndReturnsTheExecutionName()
    {
        _arm.Then(202, """{"id": "/subscriptions/sub-1/.../executions/trainer-abc12", "name": "trainer-abc12"}""");

        (await Dispatcher().StartAsync("poems-0123")).ShouldBe("trainer-abc12");

        var request = _arm.Requests.Single();
        (request.Method, request.Path, request.Query).ShouldBe(("POST", JobPath + "/start", "?api-version=2025-01-01"));
        request.Authorization.ShouldBe("Bearer token-123");
        _credential.Scopes.Single().ShouldBe([$"{_arm.Endpoint}.default"]);
        var container = JsonNode.Parse(request.Body)!["containers"]![0]!;
        container["name"]!.GetValue<string>().ShouldBe("trainer");
        container["image"]!.GetValue<string>().ShouldBe("acr.azurecr.io/trainer:1");
        var env = container["env"]!.AsArray();
        env.Count.ShouldBe(1, "JOB_ID and nothing else: no secrets travel in the start request");
        (env[0]!["name"]!.GetValue<string>(), env[0]!["value"]!.GetValue<string>()).ShouldBe(("JOB_ID", "poems-0123"));
    }

    [Fact]
    public async Task Throttled_WaitsWhatRetryAfterSays_ThenSucceeds()
    {
        _arm.Then(429, """{"error": {"code": "TooManyRequests"}}""", retryAfter: "1");
        _arm.Then(202, """{"name": "trainer-x"}""");

        (await Dispatcher().StartAsync("j")).ShouldBe("trainer-x");

        var requests = _arm.Requests.ToArray();
        requests.Length.ShouldBe(2);
        (requests[1].At - requests[0].At).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(900), "Retry-After: 1 was honoured");
    }

    [Fact]
    public async Task ServerErrors_AreRetried_ThenReportedWithTheStatus()
    {
        _arm.Default = (503, """{"error": "unavailable"}""");
        var error = await Should.ThrowAsync<HttpRequestException>(() => Dispatcher().StartAsync("j"));
        error.Message.ShouldContain("503");
        _arm.Requests.Count.ShouldBe(5, "the first try and four retries");
    }

    [Fact]
    public async Task ClientErrors_AreNotRetried()
    {
        _arm.Then(403, """{"error": {"code": "AuthorizationFailed"}}""");
        (await Should.ThrowAsync<HttpRequestException>(() => Dispatcher().StartAsync("j"))).Message.ShouldContain("AuthorizationFailed");
        _arm.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task PersistentFailures_OpenTheCircuit_SoCallsFailFastWithoutReachingArm()
    {
        _arm.Default = (500, "{}");
        var dispatcher = Dispatcher(breakDuration: TimeSpan.FromMinutes(1));
        await Should.ThrowAsync<Exception>(() => dispatcher.StartAsync("j"));
        await Should.ThrowAsync<Exception>(() => dispatcher.StartAsync("j"));
        var reached = _arm.Requests.Count;

        await Should.ThrowAsync<BrokenCircuitException>(() => dispatcher.StartAsync("j"));
        _arm.Requests.Count.ShouldBe(reached, "an open circuit does not call ARM");
    }

    [Fact]
    public async Task Status_Count_AndStop_UseTheExecutionResources()
    {
        _arm.Then(200, """{"properties": {"status": "Running"}}""");
        _arm.Then(200, """{"properties": {"status": "Failed"}}""");
        _arm.Then(404, """{"error": {"code": "NotFound"}}""");
        _arm.Then(200, """{"value": [{"properties": {"status": "Running"}}, {"properties": {"status": "Succeeded"}}, {"properties": {"status": "Processing"}}]}""");
        _arm.Then(202, "{}");
        var dispatcher = Dispatcher();

        (await dispatcher.GetStatusAsync("e1")).ShouldBe(ExecutionStatus.Running);
        (await dispatcher.GetStatusAsync("e1")).ShouldBe(ExecutionStatus.Failed);
        (await dispatcher.GetStatusAsync("gone")).ShouldBe(ExecutionStatus.Unknown);
        (await dispatcher.CountRunningAsync()).ShouldBe(2);
        await dispatcher.CancelAsync("e1");

        _arm.Requests.Select(r => (r.Method, r.Path)).ShouldBe([
            ("GET", JobPath + "/executions/e1"), ("GET", JobPath + "/executions/e1"), ("GET", JobPath + "/executions/gone"),
            ("GET", JobPath + "/executions"), ("POST", JobPath + "/executions/e1/stop")]);
    }
}
