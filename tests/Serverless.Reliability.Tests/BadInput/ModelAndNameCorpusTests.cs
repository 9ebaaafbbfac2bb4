using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Serverless.Core.Naming;
using Serverless.Embedded.Blobs;
using Serverless.Model;
using Serverless.Model.Gpt2;
using Serverless.Reliability.Tests.Harness;

namespace Serverless.Reliability.Tests.BadInput;

/// <summary>Malformed model directories and user names from the corpus: each refused with its own error, nothing loaded or written outside its place.</summary>
public sealed class ModelAndNameCorpusTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("models-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string SaveTiny(string name) => TinyModel.Save(Path.Combine(_root, name));

    [Fact]
    public void EveryMalformedModelDirectory_IsRefusedWithItsOwnError()
    {
        var watch = Figures.Start();
        var wrong = new List<string>();
        var rows = Corpus.Table("models/mutations.tsv");
        foreach (var (keys, expected) in rows)
        {
            var directory = SaveTiny(keys[0]);
            Mutate(keys[0], directory);
            try
            {
                using var loaded = Gpt2Model.FromPretrained(directory);
                wrong.Add($"{keys[0]}: loaded");
            }
            catch (ModelFormatException e) when (e.Message.Contains(expected, StringComparison.OrdinalIgnoreCase))
            {
            }
            catch (Exception e)
            {
                wrong.Add($"{keys[0]}: expected \"{expected}\", got {e.GetType().Name}: {e.Message}");
            }
        }

        Figures.Add(new Figure("bad input — model directories", rows.Count, 0, 0, 0, 0, 0, watch.Elapsed, $"{rows.Count - wrong.Count} of {rows.Count} refused with their specific error"));
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
    }

    [Fact]
    public async Task EveryBadName_IsRefusedAtTheEdge_AndNothingIsWrittenOutsideItsContainer()
    {
        var home = Path.Combine(_root, "home");
        var store = new FolderBlobStore(home);
        var wrong = new List<string>();
        var rows = Corpus.Table("names.tsv").Where(r => r.Keys[0] != "files-differing-in-case").ToList();
        foreach (var (keys, expected) in rows)
        {
            var value = Corpus.Json<string>(keys[1]);
            var problem = keys[0] switch
            {
                "blob" => BlobNames.Problem(value),
                "model" => Refusal(() => BlobNames.Model(value)),
                "container" => Refusal(() => BlobNames.Container(value)),
                _ => throw new InvalidDataException(keys[0]),
            };
            if (problem is null || !problem.Contains(expected, StringComparison.OrdinalIgnoreCase))
            {
                wrong.Add($"{keys[0]} {keys[1]}: expected \"{expected}\", got {problem ?? "accepted"}");
            }

            if (keys[0] == "blob")
            {
                try
                {
                    await store.WriteAsync(Containers.Datasets, value, new MemoryStream("x"u8.ToArray()));
                    wrong.Add($"blob {keys[1]}: the folder store wrote it");
                }
                catch (ArgumentException)
                {
                }
            }
        }

        Directory.GetFiles(_root, "*", SearchOption.AllDirectories).Where(f => !f.StartsWith(Path.Combine(home, Containers.Datasets), StringComparison.Ordinal) && f.StartsWith(home, StringComparison.Ordinal))
            .ShouldBeEmpty("nothing landed outside the container");
        Directory.Exists(Path.Combine(home, Containers.Datasets)) .ShouldBeFalse("no bad name was written at all");
        Figures.Add(new Figure("bad input — blob, model and container names", rows.Count, 0, 0, 0, 0, 0, TimeSpan.Zero, $"{rows.Count - wrong.Count} of {rows.Count} refused with their reason"));
        wrong.ShouldBeEmpty(string.Join("\n", wrong));
    }

    private static string? Refusal(Action validate)
    {
        try
        {
            validate();
            return null;
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
    }

    /// <summary>Applies one corpus mutation to a valid tiny model directory.</summary>
    internal static void Mutate(string mutation, string directory)
    {
        var weights = Path.Combine(directory, "model.safetensors");
        var configPath = Path.Combine(directory, "config.json");
        var bytes = File.ReadAllBytes(weights);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, headerLength))!.AsObject();
        var data = bytes[(8 + headerLength)..];
        var tensors = header.Where(p => p.Key != "__metadata__").OrderBy(p => p.Value!["data_offsets"]![0]!.GetValue<long>()).Select(p => p.Key).ToList();
        var first = header[tensors[0]]!.AsObject();
        var second = header[tensors[1]]!.AsObject();
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();

        void WriteHeader(string json)
        {
            var text = Encoding.UTF8.GetBytes(json);
            var padded = (text.Length + 7) / 8 * 8;
            var output = new byte[8 + padded + data.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(output, (ulong)padded);
            Array.Fill(output, (byte)' ', 8, padded);
            text.CopyTo(output, 8);
            data.CopyTo(output, 8 + padded);
            File.WriteAllBytes(weights, output);
        }

        void SetLength(ulong length)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
            File.WriteAllBytes(weights, bytes);
        }

        switch (mutation)
        {
            case "truncate-to-4-bytes": File.WriteAllBytes(weights, bytes[..4]); break;
            case "truncate-to-0-bytes": File.WriteAllBytes(weights, []); break;
            case "truncate-data": File.WriteAllBytes(weights, bytes[..(8 + headerLength + 10)]); break;
            case "truncate-header": File.WriteAllBytes(weights, bytes[..(8 + (headerLength / 2))]); break;
            case "header-length-huge": SetLength(1UL << 40); break;
            case "header-length-over-limit":
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, 17UL << 20);
                File.WriteAllBytes(weights, [.. bytes, .. new byte[17 << 20]]);
                break;
            case "header-length-small": SetLength(1); break;
            case "header-not-json": WriteHeader("this is not json at all"); break;
            case "header-json-array": WriteHeader("[1, 2, 3]"); break;
            case "header-duplicate-tensor":
                var json = header.ToJsonString();
                WriteHeader("{" + $"\"{tensors[0]}\":{first.ToJsonString()}," + json[1..]);
                break;
            case "overlapping-offsets":
                second["data_offsets"] = new JsonArray(first["data_offsets"]![0]!.GetValue<long>(), first["data_offsets"]![0]!.GetValue<long>() + (second["data_offsets"]![1]!.GetValue<long>() - second["data_offsets"]![0]!.GetValue<long>()));
                WriteHeader(header.ToJsonString());
                break;
            case "offsets-reversed":
                first["data_offsets"] = new JsonArray(first["data_offsets"]![1]!.GetValue<long>(), first["data_offsets"]![0]!.GetValue<long>());
                WriteHeader(header.ToJsonString());
                break;
            case "offsets-negative": first["data_offsets"] = new JsonArray(-8, 0); WriteHeader(header.ToJsonString()); break;
            case "offsets-three-numbers": first["data_offsets"] = new JsonArray(0, 1, 2); WriteHeader(header.ToJsonString()); break;
            case "offsets-past-end": first["data_offsets"] = new JsonArray(data.Length - 4, data.Length + 4092); WriteHeader(header.ToJsonString()); break;
            case "wrong-dtype-string": first["dtype"] = "F33"; WriteHeader(header.ToJsonString()); break;
            case "dtype-lowercase": first["dtype"] = "f32"; WriteHeader(header.ToJsonString()); break;
            case "dtype-number": first["dtype"] = 5; WriteHeader(header.ToJsonString()); break;
            case "shape-overflow": first["shape"] = new JsonArray(1L << 62, 1L << 62); WriteHeader(header.ToJsonString()); break;
            case "shape-negative": first["shape"] = new JsonArray(-1, 4); WriteHeader(header.ToJsonString()); break;
            case "shape-float": first["shape"] = new JsonArray(1.5); WriteHeader(header.ToJsonString()); break;
            case "shape-size-mismatch": first["shape"] = new JsonArray(1); WriteHeader(header.ToJsonString()); break;
            case "missing-shape": first.Remove("shape"); WriteHeader(header.ToJsonString()); break;
            case "metadata-not-string": header["__metadata__"] = new JsonObject { ["format"] = 5 }; WriteHeader(header.ToJsonString()); break;
            case "pickle-named-safetensors": File.WriteAllBytes(weights, [0x80, 0x02, (byte)'c', (byte)'o', (byte)'s', (byte)'\n', .. Encoding.ASCII.GetBytes("system\n(S'echo pwned'\ntR.")]); break;
            case "pickle-bin-only":
                File.Move(weights, Path.Combine(directory, "pytorch_model.bin"));
                break;
            case "config-more-layers": config["n_layer"] = 3; File.WriteAllText(configPath, config.ToJsonString()); break;
            case "config-wider": config["n_embd"] = 64; File.WriteAllText(configPath, config.ToJsonString()); break;
            case "config-vocab-bigger": config["vocab_size"] = 300; File.WriteAllText(configPath, config.ToJsonString()); break;
            case "config-not-json": File.WriteAllText(configPath, "{n_layer: 2"); break;
            case "config-null": File.WriteAllText(configPath, "null"); break;
            case "config-bad-heads": config["n_head"] = 3; File.WriteAllText(configPath, config.ToJsonString()); break;
            case "config-zero-layers": config["n_layer"] = 0; File.WriteAllText(configPath, config.ToJsonString()); break;
            case "config-unknown-tokenizer": config["serverless_tokenizer"] = "sentencepiece"; File.WriteAllText(configPath, config.ToJsonString()); break;
            case "missing-config": File.Delete(configPath); break;
            case "missing-weights": File.Delete(weights); break;
            case "tensor-missing": header.Remove(tensors[^1]); WriteHeader(header.ToJsonString()); break;
            default: throw new ArgumentException($"unknown mutation {mutation}");
        }
    }
}
