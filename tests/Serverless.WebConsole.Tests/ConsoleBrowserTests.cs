using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Serverless.Core.Naming;
using Serverless.Core.Ports;

namespace Serverless.WebConsole.Tests;

/// <summary>
/// The console in a real browser: headless Chromium (Debian's <c>chromium</c>, by its executable path: Playwright's own
/// browser download is not possible here) driven by Playwright, over the real embedded pipeline with trainers as child
/// processes. Controls are found by role and accessible name only, so an unlabelled control fails the test.
/// Screenshots of each page go to <c>artifacts/console/</c>.
/// </summary>
public sealed partial class ConsoleBrowserTests : IAsyncLifetime
{
    private ConsoleFixture _f = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    public async Task InitializeAsync()
    {
        _f = await ConsoleFixture.StartAsync(runStages: true);
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium(),
            Headless = true,
            // The CI machine runs as root, where Chromium's sandbox cannot start.
            Args = ["--no-sandbox"],
        });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _f.DisposeAsync();
    }

    [Fact]
    public async Task TheConsole_UploadWatchPublishCancelRequeue_InAHeadlessBrowser()
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var cspViolations = new List<string>();
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                cspViolations.Add(message.Text);
            }
        };

        // Open with the token, as `tune up` prints it: the address bar ends clean, the cookie carries on.
        await page.GotoAsync(_f.Server.LoginUrl.ToString());
        page.Url.ShouldNotContain("token=");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Jobs", Exact = true })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Status).First).ToHaveTextAsync("live", new() { Timeout = 10_000 });

        // Data: a bad spec is refused with the spec's own words; a good one is saved; then a file dropped onto the page.
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Sections" }).GetByRole(AriaRole.Link, new() { Name = "Data" }).ClickAsync();
        await page.GetByLabel("Model name").FillAsync("poems");
        await page.GetByLabel("Spec for this model").FillAsync("""{"stpes": 5}""");
        await page.GetByRole(AriaRole.Button, new() { Name = "Validate and save spec" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("did you mean 'steps'");
        await page.GetByLabel("Spec for this model").FillAsync(ConsoleFixture.Spec(steps: 6));
        await page.GetByRole(AriaRole.Button, new() { Name = "Validate and save spec" }).ClickAsync();
        await Expect(page.GetByText("Valid; saved as datasets/poems/tune.json")).ToBeVisibleAsync();
        await DropFileAsync(page, "poems.jsonl", ConsoleFixture.Corpus(60));
        var jobLink = page.GetByRole(AriaRole.Link, new() { NameRegex = JobName() });
        await Expect(jobLink).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await Screenshot(page, "data");

        // The job page: it advances to published, with its snapshot and the loss chart drawn.
        await jobLink.ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { NameRegex = JobHeading() })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Cell, new() { Name = "poems/poems.jsonl" })).ToBeVisibleAsync();
        var version = page.GetByRole(AriaRole.Link, new() { Name = "poems version 1" });
        await Expect(version).ToBeVisibleAsync(new() { Timeout = 180_000 });
        await Expect(page.GetByRole(AriaRole.Img, new() { NameRegex = LossChart() })).ToBeVisibleAsync();
        await Screenshot(page, "job");

        // The jobs table lists it as published.
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Sections" }).GetByRole(AriaRole.Link, new() { Name = "Jobs" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "poems" }).GetByText("published")).ToBeVisibleAsync();

        // The version page: the rendered card, the metrics, the loss plot, the manifest's hashes.
        await page.GoBackAsync();
        await version.ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { NameRegex = VersionHeading() })).ToBeVisibleAsync();
        var card = page.GetByRole(AriaRole.Article, new() { Name = "Model card" });
        await Expect(card.GetByRole(AriaRole.Heading).First).ToBeVisibleAsync();
        (await card.Locator("script").CountAsync()).ShouldBe(0);
        await Expect(page.GetByRole(AriaRole.Table).Filter(new() { HasText = "Perplexity" }).GetByRole(AriaRole.Rowheader, new() { NameRegex = Candidate() })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Img, new() { Name = "Training and validation loss of candidate and scratch" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "model.safetensors" })).ToBeVisibleAsync();
        await Screenshot(page, "version");
        await Screenshot(page, "version-top", fullPage: false);

        // More data makes version 2; the model page compares the two side by side.
        await page.GotoAsync(new Uri(_f.Server.Address, "/#/data?model=poems").ToString());
        await DropFileAsync(page, "more.jsonl", ConsoleFixture.Corpus(90));
        await Expect(page.GetByRole(AriaRole.Link, new() { NameRegex = JobName() })).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await page.GotoAsync(new Uri(_f.Server.Address, "/#/models/poems").ToString());
        var second = page.GetByRole(AriaRole.Link, new() { Name = "version 2", Exact = true });
        for (var tries = 0; tries < 600 && !await second.IsVisibleAsync(); tries++)
        {
            await page.WaitForTimeoutAsync(300);
            await page.ReloadAsync();
        }

        await page.GetByLabel("Left").SelectOptionAsync("1");
        await page.GetByLabel("Right").SelectOptionAsync("2");
        await page.GetByRole(AriaRole.Button, new() { Name = "Compare" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "poems: version 1 and version 2" })).ToBeVisibleAsync();
        (await page.GetByRole(AriaRole.Table).CountAsync()).ShouldBe(2);
        await Screenshot(page, "compare");

        // A second, long job: started from the file picker, cancelled from its page.
        await _f.WriteSpecAsync("ballads", ConsoleFixture.Spec(steps: 5000));
        await page.GotoAsync(new Uri(_f.Server.Address, "/#/data?model=ballads").ToString());
        await page.GetByLabel("choose dataset files").SetInputFilesAsync(new FilePayload { Name = "ballads.jsonl", MimeType = "application/json", Buffer = System.Text.Encoding.UTF8.GetBytes(ConsoleFixture.Corpus(80)) });
        await page.GetByRole(AriaRole.Link, new() { NameRegex = JobName() }).ClickAsync(new() { Timeout = 60_000 });
        await Expect(page.GetByRole(AriaRole.Progressbar, new() { NameRegex = TrainingProgress() })).ToBeVisibleAsync(new() { Timeout = 120_000 });
        // Drawn from the points the trainer reports while it runs (the job has no metrics yet).
        await Expect(page.GetByRole(AriaRole.Img, new() { NameRegex = LiveLoss() })).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Sections" }).GetByRole(AriaRole.Link, new() { Name = "Jobs" }).ClickAsync();
        var running = page.GetByRole(AriaRole.Row).Filter(new() { HasText = "ballads" });
        await Expect(running.GetByRole(AriaRole.Progressbar, new() { NameRegex = JobProgress() })).ToBeVisibleAsync();
        var before = await running.InnerTextAsync();
        await Expect(running).Not.ToHaveTextAsync(before, new() { Timeout = 30_000 });   // the open table moves on its own
        await Screenshot(page, "jobs");
        await page.GetByLabel("State").SelectOptionAsync("published");
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "ballads" })).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "poems" })).ToHaveCountAsync(2);
        await page.GoBackAsync();
        await page.GoBackAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Cancel job" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "Cancel requested" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Cell).GetByText("cancelled", new() { Exact = true }).First).ToBeVisibleAsync(new() { Timeout = 60_000 });
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Retry job" })).ToBeVisibleAsync();

        // A dead letter (a message no stage can read), listed with its reason and requeued from the page.
        await _f.Pipeline.Bus.SendAsync(Entities.FineTuneRequests, new OutgoingMessage("garbled-1", "{ not an event"));
        await page.GetByRole(AriaRole.Navigation, new() { Name = "Sections" }).GetByRole(AriaRole.Link, new() { Name = "Events" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Listitem).Filter(new() { HasText = "ModelPublished" })).ToHaveCountAsync(2);
        var requeue = page.GetByRole(AriaRole.Button, new() { Name = "Requeue Prepare dead letters" });
        for (var tries = 0; tries < 50 && !await requeue.IsVisibleAsync(); tries++)
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "Refresh dead letters" }).ClickAsync();
            await page.WaitForTimeoutAsync(200);
        }

        await Expect(page.GetByRole(AriaRole.Cell, new() { Name = "garbled-1" })).ToBeVisibleAsync();
        await Screenshot(page, "events");
        await requeue.ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status).Filter(new() { HasText = "Requeued 1 Prepare message(s)" })).ToBeVisibleAsync();

        cspViolations.Where(m => m.Contains("Content Security Policy", StringComparison.Ordinal)).ShouldBeEmpty();
    }

    [Fact]
    public async Task WithoutTheToken_TheBrowserGets401()
    {
        var page = await _browser.NewPageAsync();
        var response = await page.GotoAsync(_f.Server.Address.ToString());
        response!.Status.ShouldBe(401);
        (await page.ContentAsync()).ShouldContain("needs its access token");
        var api = await page.GotoAsync(new Uri(_f.Server.Address, "/api/jobs").ToString());
        api!.Status.ShouldBe(401);
    }

    /// <summary>Drops a file onto the drop zone as a person's drag and drop does: a <c>drop</c> event carrying a DataTransfer.</summary>
    private static async Task DropFileAsync(IPage page, string name, string content)
    {
        var transfer = await page.EvaluateHandleAsync("""
            ([name, text]) => {
              const transfer = new DataTransfer();
              transfer.items.add(new File([text], name, { type: 'application/json' }));
              return transfer;
            }
            """, new[] { name, content });
        await page.GetByRole(AriaRole.Region, new() { Name = "Drop dataset files here" })
            .DispatchEventAsync("drop", new Dictionary<string, object> { ["dataTransfer"] = transfer });
    }

    private static ILocatorAssertions Expect(ILocator locator) => Assertions.Expect(locator);

    private static async Task Screenshot(IPage page, string name, bool fullPage = true)
    {
        var directory = Path.Combine(RepositoryRoot(), "artifacts", "console");
        Directory.CreateDirectory(directory);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(directory, name + ".png"), FullPage = fullPage });
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Serverless.sln")))
            {
                return directory.FullName;
            }
        }

        return Directory.GetCurrentDirectory();
    }

    /// <summary>Debian's Chromium (or <c>CHROMIUM_PATH</c>); the message says how to get it.</summary>
    private static string Chromium()
    {
        var path = Environment.GetEnvironmentVariable("CHROMIUM_PATH") ?? "/usr/bin/chromium";
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"no Chromium at {path}: install Debian's package (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH.");
    }

    [GeneratedRegex("^job [a-z0-9._-]+$")]
    private static partial Regex JobName();

    [GeneratedRegex("^poems version 1 \\((latest, champion|champion, latest)\\)$")]
    private static partial Regex VersionHeading();

    [GeneratedRegex("^Job ")]
    private static partial Regex JobHeading();

    [GeneratedRegex("^Loss per step")]
    private static partial Regex LossChart();

    [GeneratedRegex("^candidate")]
    private static partial Regex Candidate();

    [GeneratedRegex("^progress of job ballads")]
    private static partial Regex JobProgress();

    [GeneratedRegex("^Loss per step: candidate train")]
    private static partial Regex LiveLoss();

    [GeneratedRegex("^training progress")]
    private static partial Regex TrainingProgress();
}
