using Serverless.Trainer;

return await TrainerProgram.RunAsync(args, Environment.GetEnvironmentVariable);
