using System.Text;
using Serverless.Model;
using Serverless.Model.Data;
using Serverless.Model.Safetensors;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.BadInput;

/// <summary>
/// Mutation fuzzing with a fixed seed and a fixed number of iterations (×<c>RELIABILITY_SOAK</c>): valid datasets and
/// a valid safetensors header, mutated byte by byte, must only ever produce recorded errors (datasets) or
/// <see cref="ModelFormatException"/> (headers) — never another exception — with allocation bounded per input.
/// </summary>
public sealed class FuzzTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("fuzz-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static int Iterations => 400 * Figures.Repeats;

    private static byte[] Mutate(Random random, byte[] input, byte[] alphabet)
    {
        var bytes = new List<byte>(input);
        var edits = random.Next(1, 6);
        for (var e = 0; e < edits && bytes.Count > 0; e++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(6))
            {
                case 0: bytes[at] = (byte)random.Next(256); break;                                  // random byte
                case 1: bytes[at] = alphabet[random.Next(alphabet.Length)]; break;                  // a structural character
                case 2: bytes.RemoveRange(at, Math.Min(bytes.Count - at, random.Next(1, 16))); break; // delete a run
                case 3: bytes.InsertRange(at, bytes.GetRange(at, Math.Min(bytes.Count - at, random.Next(1, 32)))); break; // duplicate a run
                case 4: bytes.RemoveRange(at, bytes.Count - at); break;                             // truncate
                default: bytes.Insert(at, alphabet[random.Next(alphabet.Length)]); break;           // insert
            }
        }

        return [.. bytes];
    }

    [Fact]
    public void MutatedDatasets_NeverCrashTheReader_AndAllocationStaysBounded()
    {
        var watch = Figures.Start();
        var random = new Random(2026);
        var seeds = new (string Name, byte[] Bytes)[]
        {
            ("a.jsonl", Encoding.UTF8.GetBytes(Cluster.Corpus(20) + "{\"prompt\": \"Q: 2+2?\", \"completion\": \" 4\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello \\u00e9\"}]}\n")),
            ("b.txt", Encoding.UTF8.GetBytes("In the beginning was the word.\n\nAnd the word was — café, naïve, 日本語.\n\n\nThe end.\n")),
        };
        var alphabet = "{}[]\":,\\\n\r\t \0\u00ff"u8.ToArray().Concat(new byte[] { 0xC3, 0xE2, 0xF0, 0xEF, 0xBB, 0xBF, 0xFE, 0xFF }).ToArray();
        var (rejected, accepted, worst) = (0, 0, 0L);
        for (var i = 0; i < Iterations; i++)
        {
            var (name, seed) = seeds[i % seeds.Length];
            var path = Path.Combine(_root, name);
            File.WriteAllBytes(path, Mutate(random, seed, alphabet));
            var errors = new DatasetErrors();
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                _ = new DatasetReader().Read(path, errors).Sum(d => d.Text.Length);
            }
            catch (Exception e)
            {
                throw new ShouldAssertException($"iteration {i} ({name}) crashed the reader: {e}\ninput: {Convert.ToBase64String(File.ReadAllBytes(path))}");
            }

            worst = Math.Max(worst, GC.GetAllocatedBytesForCurrentThread() - before);
            (rejected, accepted) = errors.Any ? (rejected + 1, accepted) : (rejected, accepted + 1);
        }

        Figures.Add(new Figure("fuzz — mutated datasets", Iterations, 0, 0, 0, 0, 0, watch.Elapsed,
            $"0 crashes; {rejected} rejected with errors, {accepted} still valid; at most {worst >> 10} KiB allocated for one input"));
        worst.ShouldBeLessThan(8L << 20);
        rejected.ShouldBeGreaterThan(Iterations / 4, "the mutations do break files");
    }

    [Fact]
    public void MutatedSafetensorsHeaders_OnlyEverRaiseModelFormatException_AndAllocationStaysBounded()
    {
        var watch = Figures.Start();
        var random = new Random(2027);
        var directory = Path.Combine(_root, "model");
        using (var model = new Serverless.Model.Gpt2.Gpt2Model(new Serverless.Model.Gpt2.Gpt2Config
        {
            VocabSize = 257, NPositions = 16, NEmbd = 16, NLayer = 1, NHead = 2, BosTokenId = 256, EosTokenId = 256, Tokenizer = "bytes",
        }, seed: 1))
        {
            model.SavePretrained(directory);
        }

        var valid = File.ReadAllBytes(Path.Combine(directory, "model.safetensors"));
        var headerEnd = 8 + (int)BitConverter.ToUInt64(valid, 0);
        var alphabet = "{}[]\":,-0123456789eE.FBIU\0 "u8.ToArray();
        var (refused, accepted, worst) = (0, 0, 0L);
        for (var i = 0; i < Iterations; i++)
        {
            // Mutate the length prefix and the JSON header; keep the data.
            var head = Mutate(random, valid[..headerEnd], alphabet);
            if (i % 5 == 0 && head.Length >= 8)
            {
                BitConverter.GetBytes((ulong)Math.Max(0, head.Length - 8 + random.Next(-3, 4))).CopyTo(head, 0);   // a plausible length, so the JSON is reached
            }

            byte[] file = [.. head, .. valid[headerEnd..]];
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                SafetensorsHeader.Read(new MemoryStream(file), $"fuzz-{i}");
                accepted++;
            }
            catch (ModelFormatException)
            {
                refused++;
            }
            catch (Exception e)
            {
                throw new ShouldAssertException($"iteration {i} raised {e.GetType().Name}, not ModelFormatException: {e}\ninput: {Convert.ToBase64String(head)}");
            }

            worst = Math.Max(worst, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Figures.Add(new Figure("fuzz — mutated safetensors headers", Iterations, 0, 0, 0, 0, 0, watch.Elapsed,
            $"0 crashes; {refused} refused with ModelFormatException, {accepted} still valid; at most {worst >> 10} KiB allocated for one header"));
        worst.ShouldBeLessThan(4L << 20);
        refused.ShouldBeGreaterThan(Iterations / 2);
    }
}
