using Serverless.Cli.Pipeline;

namespace Serverless.WebConsole.Tests;

/// <summary>How `tune demo` finds the console of a `tune up` on the same home, and what it says when there is none.</summary>
public sealed class ConsoleFileTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("console-file-").FullName;

    public void Dispose() => Directory.Delete(_home, recursive: true);

    [Fact]
    public void Describe_WithARunningConsole_GivesTheVersionsUrlWithTheToken_OwnerOnly()
    {
        ConsoleFile.Write(_home, new Uri("http://127.0.0.1:7000/"), new string('a', 64));
        ConsoleFile.Describe(_home, "demo", 3).ShouldBe($"See demo@3 in the web console: http://127.0.0.1:7000/?token={new string('a', 64)}#/models/demo/versions/3");
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(Path.Combine(_home, ConsoleFile.Name)).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Fact]
    public void Describe_WithoutAConsole_OrWithOneLeftByADeadProcess_SaysHowToOpenIt()
    {
        ConsoleFile.Describe(_home, "demo", 3).ShouldBe($"To see demo@3 in the web console: run `tune up --home {_home}`, open the address it prints, then #/models/demo/versions/3.");
        File.WriteAllText(Path.Combine(_home, ConsoleFile.Name), """{"address": "http://127.0.0.1:7000/", "token": "t", "pid": 2147483000}""");
        ConsoleFile.PageUrl(_home, "#/jobs").ShouldBeNull();
    }
}
