using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;
using Serverless.Functions;

var builder = FunctionsApplication.CreateBuilder(args);
builder.AddPipelineFunctions();
builder.Build().Run();
