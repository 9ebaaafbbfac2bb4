using Serverless.Cli;

return TuneCli.Run(args, Console.Out, Console.Error);
