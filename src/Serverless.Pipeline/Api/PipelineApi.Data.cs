using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model.Training;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Api;

/// <summary>The write side for people: upload a dataset file, read and edit a model's spec, dead letters.</summary>
public sealed partial class PipelineApi
{
    /// <summary>The largest dataset file one upload accepts. <value>256 MiB</value>.</summary>
    public const long MaxUploadBytes = 256L * 1024 * 1024;

    /// <summary>
    /// PUT /api/datasets/{model}/{file} (or <c>{class}/{file}</c> for an image or audio class folder): stores the body
    /// as <c>datasets/{model}/{file}</c>, which starts a job as any upload does. Names follow the blob rules; bodies over
    /// <see cref="MaxUploadBytes"/> are refused, and a refused or broken upload leaves nothing behind (the stores write
    /// atomically). The spec has its own route, so that it is validated first.
    /// </summary>
    public async Task<ApiResult> UploadDatasetAsync(string model, string file, Stream body, long? declaredLength, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (!BlobNames.IsModel(model))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{model}' is not a valid model name (1–64 of a–z, 0–9, '-', '_', '.', starting with a letter or digit).");
        }

        if (BlobNames.Problem($"{model}/{file}") is { } problem)
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{file}' is not a valid file name: {problem}.");
        }

        var segments = file.Split('/');
        if (segments.Length > 2 || segments.Any(s => s.StartsWith('.')))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{file}': a dataset file is a name, or class/name for an image or audio class; names do not start with '.'.");
        }

        if (file == Containers.SpecFile)
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"{Containers.SpecFile} is the model's spec: save it with PUT /api/specs/{model}, which validates it first.");
        }

        if (declaredLength > MaxUploadBytes)
        {
            return ApiResult.Error(HttpStatusCode.RequestEntityTooLarge, $"{file} is {DiskSpace.Format(declaredLength.Value)}; one upload takes at most {DiskSpace.Format(MaxUploadBytes)}.");
        }

        BlobItem written;
        try
        {
            await using var limited = new LimitedStream(body, MaxUploadBytes);
            written = await blobs.WriteAsync(Containers.Datasets, $"{model}/{file}", limited, cancellationToken: cancellationToken);
        }
        catch (LimitedStream.TooLongException)
        {
            return ApiResult.Error(HttpStatusCode.RequestEntityTooLarge, $"{file} is larger than {DiskSpace.Format(MaxUploadBytes)}, the most one upload takes; nothing was stored.");
        }
        catch (LimitedStream.BodyReadException e)
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"the upload of {file} was cut off ({e.InnerException?.Message}); nothing was stored — send it again.");
        }

        return new ApiResult(HttpStatusCode.Created, new JsonObject
        {
            ["model"] = model,
            ["name"] = $"{Containers.Datasets}/{model}/{file}",
            ["length"] = written.Length,
            ["etag"] = written.ETag,
            ["uploadedAt"] = written.LastModified,
        });
    }

    /// <summary>GET /api/specs/{model}: the model's <c>tune.json</c> as text (null when it has none, so defaults apply).</summary>
    public async Task<ApiResult> GetSpecAsync(string model, CancellationToken cancellationToken = default)
    {
        if (!BlobNames.IsModel(model))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{model}' is not a valid model name.");
        }

        string? text = null;
        if (await blobs.OpenReadAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", cancellationToken) is { } opened)
        {
            await using var content = opened.Content;
            using var reader = new StreamReader(content);
            text = await reader.ReadToEndAsync(cancellationToken);
        }

        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["model"] = model, ["spec"] = text });
    }

    /// <summary>
    /// PUT /api/specs/{model} with the spec's text: validates it with the spec's own rules (every bad field named, 400
    /// with <c>problems</c>) and only then stores it as <c>datasets/{model}/tune.json</c>. Saving a spec starts no job.
    /// </summary>
    public async Task<ApiResult> PutSpecAsync(string model, Stream body, CancellationToken cancellationToken = default)
    {
        if (!BlobNames.IsModel(model))
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{model}' is not a valid model name.");
        }

        var buffer = new MemoryStream();
        await using (var limited = new LimitedStream(body, MaxBodyBytes))
        {
            try
            {
                await limited.CopyToAsync(buffer, cancellationToken);
            }
            catch (LimitedStream.TooLongException)
            {
                return ApiResult.Error(HttpStatusCode.RequestEntityTooLarge, $"a spec is at most {MaxBodyBytes} bytes.");
            }
            catch (LimitedStream.BodyReadException e)
            {
                return ApiResult.Error(HttpStatusCode.BadRequest, $"the spec could not be read ({e.InnerException?.Message}); nothing was saved.");
            }
        }

        var text = Encoding.UTF8.GetString(buffer.ToArray());
        try
        {
            PipelineSpec.Parse(text, Containers.SpecFile);
        }
        catch (Serverless.Model.Training.SpecException e)
        {
            return new ApiResult(HttpStatusCode.BadRequest, new JsonObject { ["error"] = e.Message, ["problems"] = new JsonArray([.. e.Problems.Select(p => (JsonNode)p)]) });
        }

        buffer.Position = 0;
        await blobs.WriteAsync(Containers.Datasets, $"{model}/{Containers.SpecFile}", buffer, cancellationToken: cancellationToken);
        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["model"] = model, ["spec"] = text, ["saved"] = $"{Containers.Datasets}/{model}/{Containers.SpecFile}" });
    }

    /// <summary>GET /api/deadletters: every stage entity's dead-lettered messages, with the reason and the stage.</summary>
    public async Task<ApiResult> ListDeadLettersAsync(CancellationToken cancellationToken = default)
    {
        var list = new JsonArray();
        foreach (var stage in StageEntities.All)
        {
            foreach (var dead in await bus.Bus.PeekDeadLettersAsync(stage.Entity, cancellationToken: cancellationToken))
            {
                list.Add(new JsonObject
                {
                    ["stage"] = stage.Stage,
                    ["entity"] = dead.Entity,
                    ["messageId"] = dead.MessageId,
                    ["type"] = dead.Properties.GetValueOrDefault(MessageProperties.Type),
                    ["model"] = dead.Properties.GetValueOrDefault(MessageProperties.Model),
                    ["deliveryCount"] = dead.DeliveryCount,
                    ["reason"] = dead.Reason,
                    ["description"] = dead.Description,
                    ["body"] = dead.Body,
                });
            }
        }

        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["deadLetters"] = list });
    }

    /// <summary>POST /api/deadletters/requeue?stage=: sends a stage's dead letters (or every stage's) back to be handled again.</summary>
    public async Task<ApiResult> RequeueDeadLettersAsync(string? stage, CancellationToken cancellationToken = default)
    {
        var stages = StageEntities.All.Where(s => string.IsNullOrEmpty(stage) || string.Equals(s.Stage, stage, StringComparison.OrdinalIgnoreCase)).ToList();
        if (stages.Count == 0)
        {
            return ApiResult.Error(HttpStatusCode.BadRequest, $"'{stage}' is not a stage with dead letters (one of {string.Join(", ", StageEntities.All.Select(s => s.Stage))}).");
        }

        var requeued = 0;
        foreach (var entity in stages)
        {
            requeued += await bus.Bus.RequeueDeadLettersAsync(entity.Entity, cancellationToken);
        }

        return new ApiResult(HttpStatusCode.OK, new JsonObject { ["requeued"] = requeued });
    }

    /// <summary>Reads at most a limit from a stream, then throws: an over-long body fails before it is stored.</summary>
    private sealed class LimitedStream(Stream inner, long limit) : Stream
    {
        private long _read;

        // Neither is an IOException: the blob store's retry policy must not take a bad body for a storage hiccup (it
        // cannot read the body again anyway).
        public sealed class TooLongException() : Exception("the body is over the limit");

        public sealed class BodyReadException(IOException inner) : Exception("the body could not be read", inner);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            try
            {
                return Count(inner.Read(buffer, offset, count));
            }
            catch (IOException e)
            {
                throw new BodyReadException(e);
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return Count(await inner.ReadAsync(buffer, cancellationToken));
            }
            catch (IOException e)
            {
                throw new BodyReadException(e);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int read)
        {
            _read += read;
            return _read > limit ? throw new TooLongException() : read;
        }
    }
}
