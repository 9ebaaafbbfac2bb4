using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Serverless.Core.Naming;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.Scenarios;

/// <summary>Retraining schedules across schedule boundaries, daylight-saving changes and clock jumps (fake clock).</summary>
[Collection(ReliabilityScenarios.Name)]
public sealed class ClockTests : IDisposable
{
    private readonly string _home = Path.Combine(Path.GetTempPath(), "clock-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_home, recursive: true);
    }

    /// <summary>Runs the Schedule stage every <paramref name="step"/> from <paramref name="from"/> to <paramref name="to"/>; returns the UTC times a request was sent.</summary>
    private async Task<List<DateTimeOffset>> RunAsync(string cron, string? zone, DateTimeOffset from, DateTimeOffset to, TimeSpan step, Func<int, TimeSpan>? jump = null)
    {
        var clock = new FakeTimeProvider(from);
        using var pipeline = new Serverless.Cli.Pipeline.EmbeddedPipeline(_home, clock: clock);
        await pipeline.Runtime.Bus.EnsureTopologyAsync();
        var spec = new JsonObject { ["retrain"] = new JsonObject { ["cron"] = cron, ["timeZone"] = zone, ["onlyIfDataChanged"] = false } };
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "nightly/tune.json", new MemoryStream(Encoding.UTF8.GetBytes(spec.ToJsonString())));
        await pipeline.Blobs.WriteAsync(Containers.Datasets, "nightly/a.txt", new MemoryStream("one\n\ntwo"u8.ToArray()));
        var sent = new List<DateTimeOffset>();
        var offset = TimeSpan.Zero;   // the wall clock as the host reads it, which may jump either way
        for (var tick = 0; clock.GetUtcNow() + offset <= to; tick++)
        {
            var now = clock.GetUtcNow() + offset;
            if ((await pipeline.Runtime.Schedule.HandleAsync(now)).Count > 0)
            {
                sent.Add(now);
            }

            clock.Advance(step);
            offset += jump?.Invoke(tick) ?? TimeSpan.Zero;
        }

        var queued = 0;
        while (await pipeline.Bus.ReceiveAsync(Entities.FineTuneRequests, 100) is { Count: > 0 } batch)
        {
            queued += batch.Count;
        }

        queued.ShouldBe(sent.Count, "one queued request per occurrence");
        return sent;
    }

    public static TheoryData<string, string, string, string, int> DaylightSaving => new()
    {
        // Berlin springs forward 2026-03-29 02:00→03:00: 02:30 does not exist that day and runs once, just after the gap.
        { "spring forward, skipped time", "30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z", 3 },
        // Berlin falls back 2026-10-25 03:00→02:00: 02:30 happens twice and runs once.
        { "fall back, repeated time", "30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z", 3 },
        { "New York spring forward", "15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3 },
        { "New York fall back, hourly", "0 * * * *", "America/New_York", "2026-11-01T00:00:00Z", 73 },
        { "UTC every 15 minutes across a day boundary", "*/15 * * * *", null!, "2026-12-31T23:00:00Z", 289 },
    };

    [Theory]
    [MemberData(nameof(DaylightSaving))]
    public async Task ScheduleBoundaries_AndDaylightSaving_NoMissedNoDoubledRetraining(string scenario, string cron, string? zone, string start, int expected)
    {
        var watch = Figures.Start();
        var from = DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture);
        var sent = await RunAsync(cron, zone, from, from.AddHours(72), TimeSpan.FromMinutes(5));
        Figures.Add(new Figure($"clock — {scenario}", 72 * 12, 0, expected, sent.Count, Math.Max(0, sent.Count - expected), Math.Max(0, expected - sent.Count), watch.Elapsed, $"cron '{cron}' in {zone ?? "UTC"}"));
        sent.Count.ShouldBe(expected, string.Join(", ", sent));
        sent.Distinct().Count().ShouldBe(sent.Count);
    }

    [Fact]
    public async Task ClockJumps_BackNeverRepeats_ForwardRunsOnlyTheLatestMissed()
    {
        var watch = Figures.Start();
        var from = new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);
        // Hourly for 12 hours, stepping 10 minutes; at tick 20 the clock falls back 3 hours, at tick 60 it leaps 2 days.
        var sent = await RunAsync("0 * * * *", null, from, from.AddHours(60), TimeSpan.FromMinutes(10), tick => tick switch
        {
            20 => TimeSpan.FromHours(-3),
            60 => TimeSpan.FromDays(2),
            _ => TimeSpan.Zero,
        });
        // 00:00–03:00 hourly; back to 00:30 — nothing until 03:00 has passed again, then 04:00–07:00; two days later one
        // catch-up for the latest missed hour (06-03 07:00), then hourly to the end at 12:00.
        var day1 = Enumerable.Range(0, 8).Select(h => from.AddHours(h));
        var day3 = Enumerable.Range(7, 6).Select(h => from.AddDays(2).AddHours(h));
        var expected = day1.Concat(day3).ToList();
        var hours = sent.Select(s => new DateTimeOffset(s.Year, s.Month, s.Day, s.Hour, 0, 0, TimeSpan.Zero)).ToList();
        Figures.Add(new Figure("clock — jumps back 3 h and forward 2 days", 61 + 30, 0, expected.Count, sent.Count,
            Math.Max(0, hours.Count - hours.Distinct().Count()), expected.Except(hours).Count(), watch.Elapsed));
        hours.ShouldBe(expected);
    }
}
