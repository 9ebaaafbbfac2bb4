using System.Net;
using System.Text;
using Serverless.Core.Contracts;
using Serverless.Core.Naming;
using Serverless.Pipeline.Api;

namespace Serverless.Cli.Tests.Pipeline;

/// <summary>The HTTP API's logic (the Functions app's HTTP triggers call exactly this), over the embedded ports.</summary>
public sealed class PipelineApiTests : IAsyncDisposable
{
    private readonly PipelineHarness _h = new();

    public ValueTask DisposeAsync() => _h.DisposeAsync();

    private PipelineApi Api => _h.Pipeline.Runtime.Api;

    private static MemoryStream Body(string json) => new(Encoding.UTF8.GetBytes(json));

    [Fact]
    public async Task Submit_ValidatesAndQueuesARequest()
    {
        await _h.Pipeline.Runtime.Bus.EnsureTopologyAsync();
        var accepted = await Api.SubmitAsync(Body("""{"model": "poems", "spec": {"steps": 5, "warmupSteps": 1}}"""));
        accepted.Status.ShouldBe(HttpStatusCode.Accepted);
        var request = CloudEvent.Parse((await _h.Pipeline.Bus.ReceiveAsync(Entities.FineTuneRequests)).Single().Body).DataAs<FineTuneRequested>();
        (request.Model, request.Trigger, request.Spec!["steps"]!.GetValue<int>()).ShouldBe(("poems", "submit", 5));
    }

    [Theory]
    [InlineData("""{"model": "../etc"}""", HttpStatusCode.BadRequest, "model")]
    [InlineData("""{"model": "ok", "spec": {"stpes": 5}}""", HttpStatusCode.BadRequest, "did you mean 'steps'")]
    [InlineData("""[1]""", HttpStatusCode.BadRequest, "JSON object")]
    [InlineData("""{"model": """, HttpStatusCode.BadRequest, "not valid JSON")]
    public async Task Submit_BadBodies_AreRefusedSayingWhy(string body, HttpStatusCode status, string expected)
    {
        var result = await Api.SubmitAsync(Body(body));
        result.Status.ShouldBe(status);
        result.Body.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }).ShouldContain(expected);
    }

    [Fact]
    public async Task Submit_OversizedBody_Is413()
    {
        var huge = "{\"model\": \"m\", \"pad\": \"" + new string('x', PipelineApi.MaxBodyBytes) + "\"}";
        (await Api.SubmitAsync(Body(huge))).Status.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
    }

    [Fact]
    public async Task Unknown_JobsAndModels_Are404_BadNames400()
    {
        (await Api.GetJobAsync("nope")).Status.ShouldBe(HttpStatusCode.NotFound);
        (await Api.GetJobAsync("../../etc/passwd")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await Api.GetModelAsync("nope")).Status.ShouldBe(HttpStatusCode.NotFound);
        (await Api.GetModelAsync("Bad Name")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await Api.ListModelsAsync()).Body["models"]!.AsArray().Count.ShouldBe(0);
    }
}
