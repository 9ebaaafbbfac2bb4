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

    [Theory]
    [InlineData("Bad Model", "a.jsonl", "model name")]
    [InlineData("poems", "../a.jsonl", "segment")]
    [InlineData("poems", "cats/big/a.png", "class/name")]
    [InlineData("poems", ".hidden.jsonl", "do not start with '.'")]
    [InlineData("poems", "tune.json", "PUT /api/specs/poems")]
    public async Task UploadDataset_BadNames_AreRefusedAndNothingIsStored(string model, string file, string expected)
    {
        var result = await Api.UploadDatasetAsync(model, file, Body("{\"text\": \"x\"}"), 14);
        result.Status.ShouldBe(HttpStatusCode.BadRequest);
        result.Body["error"]!.GetValue<string>().ShouldContain(expected);
        await foreach (var item in _h.Pipeline.Blobs.ListAsync(Containers.Datasets, ""))
        {
            throw new ShouldAssertException($"{item.Name} was stored");
        }
    }

    [Fact]
    public async Task UploadDataset_StoresTheFileUnderTheModel_ClassFoldersToo()
    {
        var result = await Api.UploadDatasetAsync("poems", "a.jsonl", Body("{\"text\": \"x\"}"), 13);
        result.Status.ShouldBe(HttpStatusCode.Created);
        result.Body["name"]!.GetValue<string>().ShouldBe("datasets/poems/a.jsonl");
        (await _h.Pipeline.Blobs.GetAsync(Containers.Datasets, "poems/a.jsonl"))!.Length.ShouldBe(13);
        (await Api.UploadDatasetAsync("glyphs", "cats/1.png", Body("png"), 3)).Status.ShouldBe(HttpStatusCode.Created);
    }

    [Fact]
    public async Task UploadDataset_OverTheLimit_Is413_DeclaredOrStreamed_AndLeavesNothing()
    {
        (await Api.UploadDatasetAsync("poems", "big.txt", Body("x"), PipelineApi.MaxUploadBytes + 1)).Status.ShouldBe(HttpStatusCode.RequestEntityTooLarge);

        // A body that does not say its length (chunked) is cut off at the limit, and the partial file never appears.
        var streamed = await Api.UploadDatasetAsync("poems", "big.txt", new EndlessStream(), null);
        streamed.Status.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        (await _h.Pipeline.Blobs.GetAsync(Containers.Datasets, "poems/big.txt")).ShouldBeNull();
        Directory.EnumerateFiles(Path.Combine(_h.Home, Containers.Datasets), "*", SearchOption.AllDirectories).ShouldBeEmpty();
    }

    [Fact]
    public async Task Spec_IsValidatedWithTheSpecsOwnErrors_BeforeItIsStored()
    {
        (await Api.GetSpecAsync("poems")).Body["spec"].ShouldBeNull();
        var bad = await Api.PutSpecAsync("poems", Body("""{"stpes": 5}"""));
        bad.Status.ShouldBe(HttpStatusCode.BadRequest);
        bad.Body["problems"]!.AsArray().Select(p => p!.GetValue<string>()).ShouldContain(p => p.Contains("did you mean 'steps'", StringComparison.Ordinal));
        (await _h.Pipeline.Blobs.GetAsync(Containers.Datasets, "poems/tune.json")).ShouldBeNull();

        var good = await Api.PutSpecAsync("poems", Body("""{"steps": 5, "warmupSteps": 1}"""));
        good.Status.ShouldBe(HttpStatusCode.OK);
        (await Api.GetSpecAsync("poems")).Body["spec"]!.GetValue<string>().ShouldContain("\"steps\": 5");
    }

    [Fact]
    public async Task ListJobs_RefusesBadFilters_NamingTheStates()
    {
        (await Api.ListJobsAsync(state: "sleeping")).Body["error"]!.GetValue<string>().ShouldContain("running");
        (await Api.ListJobsAsync(model: "Bad Name")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await Api.ListJobsAsync(limit: 0)).Status.ShouldBe(HttpStatusCode.BadRequest);
        var empty = await Api.ListJobsAsync();
        (empty.Status, empty.Body["jobs"]!.AsArray().Count, empty.Body["more"]!.GetValue<bool>()).ShouldBe((HttpStatusCode.OK, 0, false));
    }

    [Fact]
    public async Task DeadLetters_AreListedWithTheStage_AndRequeued()
    {
        await _h.Pipeline.Runtime.Bus.EnsureTopologyAsync();
        await _h.Pipeline.Bus.SendAsync(Entities.FineTuneRequests, new Serverless.Core.Ports.OutgoingMessage("poison-1", "not an event"));
        var received = (await _h.Pipeline.Bus.ReceiveAsync(Entities.FineTuneRequests)).Single();
        await _h.Pipeline.Bus.DeadLetterAsync(Entities.FineTuneRequests, received, "InvalidEvent", "not JSON");

        var listed = (await Api.ListDeadLettersAsync()).Body["deadLetters"]!.AsArray().Single()!;
        (listed["stage"]!.GetValue<string>(), listed["messageId"]!.GetValue<string>(), listed["reason"]!.GetValue<string>()).ShouldBe(("Prepare", "poison-1", "InvalidEvent"));
        (await Api.RequeueDeadLettersAsync("nowhere")).Status.ShouldBe(HttpStatusCode.BadRequest);
        (await Api.RequeueDeadLettersAsync("prepare")).Body["requeued"]!.GetValue<int>().ShouldBe(1);
        (await Api.ListDeadLettersAsync()).Body["deadLetters"]!.AsArray().ShouldBeEmpty();
        (await _h.Pipeline.Bus.ReceiveAsync(Entities.FineTuneRequests)).Single().MessageId.ShouldBe("poison-1");
    }

    /// <summary>Zeros forever, as a client that never ends its upload.</summary>
    private sealed class EndlessStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => 0; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            Array.Clear(buffer, offset, count);
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
