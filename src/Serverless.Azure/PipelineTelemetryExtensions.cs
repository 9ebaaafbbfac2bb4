using Azure.Monitor.OpenTelemetry.Exporter;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Serverless.Azure;

/// <summary>OpenTelemetry for the hosts: the pipeline's traces (one per dataset, across stages and processes) and metrics.</summary>
public static class PipelineTelemetryExtensions
{
    /// <summary>Every pipeline ActivitySource and Meter (<c>Serverless.Pipeline.*</c>).</summary>
    public const string Sources = "Serverless.Pipeline.*";

    /// <summary>
    /// Exports traces and metrics to Application Insights when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set
    /// (authenticating with the managed identity, since local auth is off), and to the console when
    /// <c>Telemetry:Console</c> is <c>true</c>.
    /// </summary>
    public static IServiceCollection AddPipelineTelemetry(this IServiceCollection services, IConfiguration configuration, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var insights = configuration["APPLICATIONINSIGHTS_CONNECTION_STRING"];
        var console = string.Equals(configuration["Telemetry:Console"], "true", StringComparison.OrdinalIgnoreCase);
        var credential = PipelineAzureExtensions.Credential(HostSettings.From(configuration));
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            .WithTracing(tracing =>
            {
                tracing.AddSource(Sources);
                if (insights is { Length: > 0 })
                {
                    tracing.AddAzureMonitorTraceExporter(o => { o.ConnectionString = insights; o.Credential = credential; });
                }

                if (console)
                {
                    tracing.AddConsoleExporter();
                }
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(Sources);
                if (insights is { Length: > 0 })
                {
                    metrics.AddAzureMonitorMetricExporter(o => { o.ConnectionString = insights; o.Credential = credential; });
                }

                if (console)
                {
                    metrics.AddConsoleExporter();
                }
            });
        return services;
    }
}
