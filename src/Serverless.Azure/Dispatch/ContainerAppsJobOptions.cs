namespace Serverless.Azure.Dispatch;

/// <summary>Where the trainer job lives and how to start it. Its template (image, resources, settings) is read from the job itself.</summary>
public sealed record ContainerAppsJobOptions
{
    /// <summary>The subscription id.</summary>
    public required string SubscriptionId { get; init; }

    /// <summary>The resource group.</summary>
    public required string ResourceGroup { get; init; }

    /// <summary>The Container Apps job's name (the trainer).</summary>
    public required string JobName { get; init; }

    /// <summary>The container in the job's template that receives <c>JOB_ID</c>. <value>trainer</value>.</summary>
    public string ContainerName { get; init; } = "trainer";

    /// <summary>Azure Resource Manager. <value>https://management.azure.com</value>.</summary>
    public Uri ArmEndpoint { get; init; } = new("https://management.azure.com");

    /// <summary>The Microsoft.App API version. <value>2025-01-01</value>.</summary>
    public string ApiVersion { get; init; } = "2025-01-01";

    /// <summary>Longest wait for one ARM request; a start that outlasts it is treated as "may have happened". <value>100 s</value>.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>Start requests per job before giving up (a throttled or ambiguous answer costs one). <value>4</value>.</summary>
    public int MaxStartAttempts { get; init; } = 4;

    /// <summary>The longest <c>Retry-After</c> a start waits for in place; a longer one makes the job wait (in the <c>waiting</c> state) instead. <value>30 s</value>.</summary>
    public TimeSpan MaxStartRetryAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>First wait after an ambiguous or throttled start, doubling; <c>Retry-After</c> wins when ARM sends it. <value>2 s</value>.</summary>
    public TimeSpan StartRetryDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longest wait for a run to appear after a start that ARM accepted without naming it (a <c>Location</c> to follow)
    /// or that may have happened (5xx, timeout), before giving up or starting again. <value>2 min</value>.
    /// </summary>
    public TimeSpan StartOperationTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>The name of the environment variable that carries the job id. <value>JOB_ID</value>.</summary>
    public const string JobIdVariable = "JOB_ID";

    /// <summary>The name of the environment variable that carries the attempt number (what tells a retry from the run it replaces). <value>JOB_ATTEMPT</value>.</summary>
    public const string JobAttemptVariable = "JOB_ATTEMPT";
}
