using Microsoft.Extensions.DependencyInjection;

namespace Serverless.Pipeline.Ingest;

/// <summary>Registers the Ingest stage.</summary>
public static class IngestRegistration
{
    /// <summary>Ingest: a new dataset blob becomes a fine-tune request (<see cref="DatasetUploadedHandler"/>).</summary>
    public static IServiceCollection AddIngest(this IServiceCollection services) => services.AddSingleton<DatasetUploadedHandler>();
}
