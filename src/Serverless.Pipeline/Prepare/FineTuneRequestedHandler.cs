using Microsoft.Extensions.Logging;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;
using Serverless.Core.Ports;
using Serverless.Model;
using Serverless.Model.Data;
using Serverless.Model.Tokenizers;
using Serverless.Model.Training;
using Serverless.Pipeline.Dispatch;
using Serverless.Pipeline.Messaging;
using Serverless.Pipeline.Specs;

namespace Serverless.Pipeline.Prepare;

/// <summary>
/// Prepare (then Dispatch): snapshots <c>datasets/{model}/</c>, derives the job id from (model, snapshot, spec,
/// trigger key) — so a repeated request finds its job and stops — validates every file (all errors, with file and
/// line, go into the job document and a <see cref="DatasetRejected"/> event), tokenizes with the base model's
/// tokenizer, writes <c>prepared/{jobId}/</c>, and hands the job to <see cref="JobDispatch"/>.
/// </summary>
public sealed class FineTuneRequestedHandler(
    IBlobStore blobs, JobStore jobs, SpecReader specs, ModelResolver models, LocalFiles files, JobDispatch dispatch,
    PipelineBus bus, PipelineOptions options, ILogger<FineTuneRequestedHandler> logger)
{
    private const string Source = "/serverless/prepare";

    /// <summary>Handles one request; returns the job id it concerned (null when the model has no data).</summary>
    public async Task<string?> HandleAsync(FineTuneRequested request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.JobId is { } continuing)
        {
            await dispatch.TryDispatchAsync(continuing, cancellationToken);
            return continuing;
        }

        string model;
        try
        {
            model = BlobNames.Model(request.Model);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException(e.Message, e);   // a request no delivery can fix: dead-lettered at once
        }

        var (snapshot, datasetHash) = await DatasetSnapshot.TakeAsync(blobs, model, cancellationToken);
        if (snapshot.Count == 0)
        {
            return null;
        }

        PipelineSpec? spec = null;
        SpecException? specError = null;
        try
        {
            spec = await specs.ReadAsync(model, request.Spec, cancellationToken);
        }
        catch (SpecException e)
        {
            specError = e;
        }

        var specHash = spec?.Hash ?? PipelineBus.StableId(specError!.Message);
        var jobId = $"{model}-{PipelineBus.StableId(model, datasetHash, specHash, request.TriggerKey)[..12]}";
        JobDocument job;
        if (await jobs.GetAsync(jobId, cancellationToken) is { } existing)
        {
            logger.JobExists(jobId, model, request.Trigger);
            var held = existing.Job.Execution;
            if (existing.Job.State == JobState.Dispatched && held is not null && JobDispatch.IsClaim(held))
            {
                await dispatch.TryDispatchAsync(jobId, cancellationToken);   // claimed before a crash: taken over once stale
                return jobId;
            }

            if (existing.Job.State != JobState.Preparing || held is not null)
            {
                return jobId;
            }

            if (await blobs.GetAsync(Containers.Prepared, $"{jobId}/manifest.json", cancellationToken) is not null)
            {
                await dispatch.TryDispatchAsync(jobId, cancellationToken);   // prepared before a crash, never dispatched
                return jobId;
            }

            // Its host stopped while preparing (the request came back): prepare again; the shards come out the same.
            job = existing.Job;
        }
        else
        {
            var now = bus.Clock.GetUtcNow();
            job = new JobDocument
            {
                JobId = jobId, Model = model, Trigger = request.Trigger, TriggerKey = request.TriggerKey,
                Spec = spec?.Source ?? request.Spec ?? [], Dataset = snapshot, DatasetHash = datasetHash, CreatedAt = now,
                TraceParent = System.Diagnostics.Activity.Current?.Id,
                History = [new JobTransition(JobState.Preparing, now, $"requested by {request.Trigger}")],
            };
            if (!await jobs.TryCreateAsync(job, cancellationToken))
            {
                return jobId;
            }
        }

        if (specError is not null)
        {
            await RejectAsync(job, [.. specError.Problems.Select(p => new DatasetProblem($"{model}/{Containers.SpecFile}", null, p.Split(':')[0], p))], specError.Message, cancellationToken);
            return jobId;
        }

        // Only the config is needed here (for the tokenizer); the trainer fetches the weights.
        var baseModel = await models.ResolveConfigAsync(spec!.BaseModel, cancellationToken);
        if (baseModel is null)
        {
            var message = $"base model '{spec.BaseModel}' was not found (a name under base-models/, or model@alias in the registry).";
            await RejectAsync(job, [new DatasetProblem($"{model}/{Containers.SpecFile}", null, "baseModel", message)], message, cancellationToken);
            return jobId;
        }

        // Two files whose names differ only in case would be one file on a case-insensitive disk (the trainer's, a user's).
        var clashes = snapshot.GroupBy(f => f.Name, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1).ToList();
        if (clashes.Count > 0)
        {
            var problems = clashes.Select(g => new DatasetProblem(g.Last().Name[(model.Length + 1)..], null, "name",
                $"the file names {string.Join(" and ", g.Select(f => $"'{f.Name[(model.Length + 1)..]}'"))} differ only in case; rename or remove one")).ToList();
            await RejectAsync(job, problems, problems[0].Message, cancellationToken);
            return jobId;
        }

        var work = Path.Combine(options.WorkDirectory, "prepare", jobId);
        try
        {
            var local = new List<string>();
            foreach (var file in snapshot)
            {
                var path = Path.Combine(work, "data", file.Name[(model.Length + 1)..]);
                await files.DownloadAsync(Containers.Datasets, file.Name, path, cancellationToken: cancellationToken);
                local.Add(path);
            }

            var baseConfig = Model.Gpt2.Gpt2Config.Load(Path.Combine(baseModel, "config.json"));
            if (spec.Training.MediaProblems(baseConfig.Media) is { Count: > 0 } mediaProblems)
            {
                var problems = mediaProblems.Select(p => new DatasetProblem($"{model}/{Containers.SpecFile}", null, p.Split(':')[0], p)).ToList();
                await RejectAsync(job, problems, string.Join(" ", mediaProblems), cancellationToken);
                return jobId;
            }

            var preparer = DocumentSources.Preparer(baseConfig,
                new DocumentSplit(spec.Training.SplitSeed, spec.Training.ValidationFraction, spec.Training.TestFraction), Path.Combine(work, "data"));
            PreparedDataset prepared;
            try
            {
                prepared = preparer.Prepare(local, Path.Combine(work, "shards"));
            }
            catch (DatasetValidationException e)
            {
                var problems = e.Errors.Items.Select(x => new DatasetProblem(x.File, x.Line, x.Field, x.Message)).ToList();
                await RejectAsync(job, problems, e.Message, cancellationToken, e.Errors.Total);
                return jobId;
            }
            catch (Exception e) when (e is not (IOException or OperationCanceledException or OutOfMemoryException))
            {
                // Reading and tokenizing are deterministic: an input that breaks them breaks them on every delivery. Say
                // so on the job rather than leave it preparing while the request is retried into the dead-letter queue.
                var message = $"the dataset could not be prepared ({e.GetType().Name}: {e.Message}); this is a bug in the pipeline, please report it with the file";
                await RejectAsync(job, [new DatasetProblem(model, null, null, message)], message, cancellationToken);
                return jobId;
            }

            await File.WriteAllTextAsync(Path.Combine(work, "shards", "manifest.json"), System.Text.Json.JsonSerializer.Serialize(prepared), cancellationToken);
            await files.UploadDirectoryAsync(Path.Combine(work, "shards"), Containers.Prepared, $"{jobId}/", last: "manifest.json", cancellationToken);
            logger.JobPrepared(jobId, model, prepared.TrainTokens, prepared.ValidationTokens, prepared.TestTokens);
        }
        finally
        {
            if (Directory.Exists(work))
            {
                Directory.Delete(work, recursive: true);
            }
        }

        await dispatch.TryDispatchAsync(jobId, cancellationToken);
        return jobId;
    }

    private async Task RejectAsync(JobDocument job, List<DatasetProblem> problems, string error, CancellationToken cancellationToken, int? total = null)
    {
        logger.JobRejectedInput(job.JobId, job.Model, error);
        await jobs.UpdateAsync(job.JobId, j => j.State == JobState.Preparing
            ? j.MoveTo(JobState.Failed, bus.Clock.GetUtcNow(), "dataset or spec rejected") with { Error = error, DatasetErrors = problems }
            : null, cancellationToken);
        await bus.PublishAsync(Entities.ModelEvents, new DatasetRejected(job.Model, job.JobId, problems, total ?? problems.Count),
            PipelineBus.StableId(job.JobId, nameof(DatasetRejected)), Source, cancellationToken);
    }
}
