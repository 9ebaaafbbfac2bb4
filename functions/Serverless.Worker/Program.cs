using Serverless.Worker;

var builder = WebApplication.CreateBuilder(args);
builder.AddPipelineWorker();
var app = builder.Build();
app.MapGet("/healthz", (StageConsumers consumers) => consumers.Healthy ? Results.Ok("ok") : Results.StatusCode(503));
app.Run();
