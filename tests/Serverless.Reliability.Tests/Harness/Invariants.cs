using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Serverless.Core.Contracts;
using Serverless.Core.Jobs;
using Serverless.Core.Naming;

namespace Serverless.Reliability.Tests.Harness;

/// <summary>What a scenario left behind, and whether it kept the promises.</summary>
internal sealed record Outcome(int JobsSubmitted, int JobsCompleted, int Versions, int Duplicates, int Lost, IReadOnlyList<string> Violations);

/// <summary>
/// The invariants every scenario is checked against afterwards: every accepted dataset ends in exactly one terminal
/// job state, along a valid path of the state machine; every approved candidate is exactly one registry version, and no
/// registry file differs from its manifest; no message is left locked or waiting, and every dead-lettered one says
/// why; each published version was announced, under one stable event id.
/// </summary>
internal static class Invariants
{
    /// <param name="cluster">The home to check.</param>
    /// <param name="expectedJobs">Jobs that should exist, all terminal.</param>
    /// <param name="expectedVersions">Registry versions that should exist.</param>
    /// <param name="allowDeadLetters">Whether dead letters (with reasons) are expected.</param>
    /// <param name="quiesce">How long to let in-flight messages settle first: longer than the lock of any message a killed host held. <value>30 s</value>.</param>
    public static async Task<Outcome> CheckAsync(Cluster cluster, int expectedJobs, int expectedVersions, bool allowDeadLetters = false, TimeSpan? quiesce = null)
    {
        // Let the system come to rest: whatever is in flight is handled (or shows up below as stuck).
        var deadline = DateTime.UtcNow + (quiesce ?? TimeSpan.FromSeconds(30));
        while (cluster.PendingMessages() > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        await cluster.CollectEventsAsync();
        var violations = new List<string>();
        var jobs = await cluster.JobsAsync();
        foreach (var job in jobs)
        {
            if (!JobStates.IsTerminal(job.State))
            {
                violations.Add($"job {job.JobId} is still {job.State}");
            }

            var path = job.History.Select(t => t.State).ToList();
            if (path.Count == 0 || path[0] != JobState.Preparing)
            {
                violations.Add($"job {job.JobId}'s history does not start with preparing");
            }

            for (var i = 1; i < path.Count; i++)
            {
                if (!JobStates.CanMove(path[i - 1], path[i]))
                {
                    violations.Add($"job {job.JobId}'s history moves {path[i - 1]} → {path[i]}");
                }
            }

            // One end; a failed or cancelled job retried on request ended before, and only that way.
            var retried = job.History.Select((t, i) => (t, i)).Count(x => x.i > 0 && JobStates.IsTerminal(job.History[x.i - 1].State)
                && x.t.Note?.StartsWith("retried on request", StringComparison.Ordinal) == true);
            if (path.Count(JobStates.IsTerminal) != 1 + retried || !JobStates.IsTerminal(path[^1]))
            {
                violations.Add($"job {job.JobId} has {path.Count(JobStates.IsTerminal)} terminal states in its history ({retried} retried on request), ending {path[^1]}");
            }
        }

        // Registry: one version per published job, nothing else, every file as its manifest says.
        var versions = 0;
        var registry = Path.Combine(cluster.Home, Containers.Registry);
        foreach (var modelDir in Directory.Exists(registry) ? Directory.GetDirectories(registry) : [])
        {
            var model = Path.GetFileName(modelDir);
            var index = JsonNode.Parse(File.ReadAllText(Path.Combine(modelDir, "index.json")))!;
            static (int Version, string Job, string State) Entry(JsonNode? v) => (v!["version"]!.GetValue<int>(), v["jobId"]!.GetValue<string>(), v["state"]!.GetValue<string>());
            var listed = index["versions"]!.AsArray().Select(Entry).ToList();

            // Versions that left the head live in their own entries (a version in both, after a crash, counts once: the head's).
            listed.AddRange(Directory.GetFiles(modelDir, "version-*.json").Select(f => Entry(JsonNode.Parse(File.ReadAllText(f)))).Where(e => listed.All(l => l.Version != e.Version)));
            if (index["readyCount"] is { } readyCount && readyCount.GetValue<int>() != listed.Count(v => v.State == "ready"))
            {
                violations.Add($"{model}'s index counts {readyCount} ready versions, {listed.Count(v => v.State == "ready")} exist");
            }
            foreach (var dup in listed.GroupBy(v => v.Job).Where(g => g.Count() > 1))
            {
                violations.Add($"job {dup.Key} has {dup.Count()} versions of {model}");
            }

            foreach (var v in listed)
            {
                versions++;
                if (v.State != "ready")
                {
                    violations.Add($"{model} version {v.Version} is {v.State}");
                }

                var job = jobs.FirstOrDefault(j => j.JobId == v.Job);
                if (job is not { State: JobState.Published } || job.Version != v.Version)
                {
                    violations.Add($"{model} version {v.Version} belongs to job {v.Job}, which is {job?.State.ToString() ?? "missing"} with version {job?.Version}");
                }

                var dir = Path.Combine(modelDir, v.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
                var manifestPath = Path.Combine(dir, "manifest.json");
                if (!File.Exists(manifestPath))
                {
                    violations.Add($"{model} version {v.Version} has no manifest");
                    continue;
                }

                foreach (var (file, hash) in JsonNode.Parse(File.ReadAllText(manifestPath))!["files"]!.AsObject())
                {
                    var local = Path.Combine(dir, file);
                    if (!File.Exists(local) || Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(local))) != hash!.GetValue<string>())
                    {
                        violations.Add($"{model}/{v.Version}/{file} does not match its manifest");
                    }
                }
            }

            foreach (var orphan in Directory.GetDirectories(modelDir).Select(Path.GetFileName).Where(d => !listed.Any(v => v.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) == d)))
            {
                violations.Add($"{model}/{orphan} is in the registry but not in its index");
            }
        }

        foreach (var job in jobs.Where(j => j.State == JobState.Published))
        {
            var announced = cluster.Events.Where(e => e.Type == nameof(ModelPublished) && e.DataAs<ModelPublished>().JobId == job.JobId).ToList();
            if (announced.Count == 0)
            {
                violations.Add($"job {job.JobId} was published but never announced");
            }
            else if (announced.Select(e => e.Id).Distinct().Count() != 1)
            {
                violations.Add($"job {job.JobId} was announced under {announced.Select(e => e.Id).Distinct().Count()} different event ids");
            }
        }

        // The broker: nothing locked or waiting; dead letters only where allowed, each with a reason.
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(cluster.Home, "bus.db")};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT entity, message_id, dead_lettered, reason, description, lock_token FROM messages";
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var (entity, id, dead) = (reader.GetString(0), reader.GetString(1), reader.GetInt64(2) == 1);
                if (!dead)
                {
                    violations.Add($"message {id} is still {(reader.IsDBNull(5) ? "waiting" : "locked")} in {entity}");
                }
                else if (!allowDeadLetters)
                {
                    violations.Add($"message {id} was dead-lettered in {entity}: {reader.GetValue(3)} {reader.GetValue(4)}");
                }
                else if (reader.IsDBNull(3) || reader.IsDBNull(4) || reader.GetString(4).Length == 0)
                {
                    violations.Add($"message {id} was dead-lettered in {entity} without a reason");
                }
            }
        }

        var published = cluster.Events.Where(e => e.Type == nameof(ModelPublished)).ToList();
        var outcome = new Outcome(
            JobsSubmitted: expectedJobs,
            JobsCompleted: jobs.Count(j => JobStates.IsTerminal(j.State)),
            Versions: versions,
            Duplicates: Math.Max(0, jobs.Count - expectedJobs) + Math.Max(0, versions - expectedVersions),
            Lost: Math.Max(0, expectedJobs - jobs.Count(j => JobStates.IsTerminal(j.State))) + Math.Max(0, expectedVersions - versions),
            Violations: violations);
        return outcome;
    }

    /// <summary>Fails with every violation listed.</summary>
    public static void ShouldHold(this Outcome outcome)
    {
        outcome.Violations.ShouldBeEmpty(string.Join("\n", outcome.Violations));
        outcome.Duplicates.ShouldBe(0);
        outcome.Lost.ShouldBe(0);
    }
}
