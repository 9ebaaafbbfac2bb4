using Azure.Identity;
using Serverless.Azure.Dispatch;
using Serverless.Core.Ports;

namespace Serverless.Azure.LiveTests;

/// <summary>
/// The dispatcher against the real trainer job (<c>Trainer__JobResourceId</c>, signed in through DefaultAzureCredential
/// with Container Apps Jobs Operator on the job). It starts one execution for a job id that has no job document (the
/// trainer exits at once), checks that a second start adopts it, then stops it. It costs one short execution.
/// </summary>
public sealed class ContainerAppsJobDispatcherLiveTests
{
    [LiveFact("Trainer__JobResourceId")]
    public async Task Start_AdoptsItsOwnRun_ThenStops()
    {
        using var http = new HttpClient();
        var dispatcher = new ContainerAppsJobDispatcher(http, new DefaultAzureCredential(),
            PipelineAzureExtensions.JobOptions(Environment.GetEnvironmentVariable("Trainer__JobResourceId")!));
        var jobId = "live-test-" + Guid.NewGuid().ToString("N")[..8];

        var execution = await dispatcher.StartAsync(jobId, attempt: 1);
        try
        {
            (await dispatcher.StartAsync(jobId, attempt: 1)).ShouldBe(execution, "a second start for the same attempt adopts the running execution");
            (await dispatcher.GetStatusAsync(execution)).ShouldBeOneOf(ExecutionStatus.Running, ExecutionStatus.Failed, ExecutionStatus.Succeeded);
        }
        finally
        {
            await dispatcher.CancelAsync(execution);
        }
    }
}
