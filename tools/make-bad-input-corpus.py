#!/usr/bin/env python3
"""Writes tests/Serverless.Reliability.Tests/corpus/: malformed inputs, each with the error it must produce.

Each folder has an expected.tsv: <file or case> TAB <substring the error must contain>. Inputs too large to keep in
git (a 100 MB line, 10^6 lines) are described in datasets/generated.tsv and made by the test. Model cases are
mutations of a freshly saved tiny model (models/mutations.tsv). Run from the repository root; deterministic.
"""
import gzip, json, os, shutil

root = "tests/Serverless.Reliability.Tests/corpus"
shutil.rmtree(root, ignore_errors=True)

def write(path, data):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))

def table(path, rows):
    write(path, "".join(f"{a}\t{b}\n" for a, b in rows))

# ---- datasets -------------------------------------------------------------------------------------------------
ds = []
def dataset(name, data, expected):
    write(f"datasets/{name}", data)
    ds.append((name, expected))

dataset("empty.txt", b"", "the file is empty")
dataset("empty.jsonl", b"", "the file is empty")
for i, ws in enumerate([" ", "\n", "\n\n\n", "\t\t", " \n \n", "\r\n\r\n", "\u3000\n", "\u00a0 \n"]):
    dataset(f"whitespace-{i}.txt", ws, "only whitespace")
dataset("whitespace.jsonl", "\n \n\t\n", "only whitespace")
for i, bad in enumerate([b"\xff", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]):
    dataset(f"invalid-utf8-{i}.txt", b"good line\n" + b"bad " + bad + b" bytes\n", "invalid UTF-8")
dataset("invalid-utf8.jsonl", b'{"text": "ok"}\n{"text": "\xff\xfe"}\n', "invalid UTF-8")
dataset("utf16-le-bom.txt", "\ufeffhello world\n".encode("utf-16-le"), "UTF-16")
dataset("utf16-be-bom.txt", "\ufeffhello world\n".encode("utf-16-be"), "UTF-16")
dataset("utf16-le-bom.jsonl", '\ufeff{"text": "hi"}\n'.encode("utf-16-le"), "UTF-16")
for i, data in enumerate([b"\x00", b"text\x00more\n", b"line one\n\nline\x00two\n", b"\x00\x00\x00\x00"]):
    dataset(f"nul-{i}.txt", data, "NUL byte")
dataset("nul.jsonl", b'{"text": "a\x00b"}\n', "NUL byte")
dataset("zip-bomb.txt", gzip.compress(b"\0" * (64 << 20), 9, mtime=0), "gzip-compressed")
dataset("zip-archive.txt", b"PK\x03\x04" + b"\0" * 100, "zip archive")
dataset("elf.txt", b"\x7fELF\x02\x01\x01\x00" + b"\0" * 64, "NUL byte")
dataset("png.jsonl", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "NUL byte")
for ext in ["csv", "json", "parquet", "md", "exe", "gz", "zip", "TXTX", "py"]:
    dataset(f"wrong-extension.{ext}", "some text\n", "unsupported file type")
jsonl = {
    "text-number.jsonl": ('{"text": 7}\n', "must be a string, found a number"),
    "text-null.jsonl": ('{"text": null}\n', "must be a string"),
    "text-array.jsonl": ('{"text": ["a", "b"]}\n', "must be a string, found an array"),
    "text-object.jsonl": ('{"text": {"nested": "x"}}\n', "must be a string, found an object"),
    "text-bool.jsonl": ('{"text": true}\n', "must be a string"),
    "text-empty.jsonl": ('{"text": ""}\n', "the record's text is empty"),
    "array-line.jsonl": ('["text", "x"]\n', "expected a JSON object, found an array"),
    "string-line.jsonl": ('"just a string"\n', "expected a JSON object, found a string"),
    "number-line.jsonl": ('42\n', "expected a JSON object, found a number"),
    "null-line.jsonl": ('null\n', "expected a JSON object"),
    "no-known-field.jsonl": ('{"body": "x"}\n', "none of the known fields"),
    "empty-object.jsonl": ('{}\n', "none of the known fields"),
    "prompt-only.jsonl": ('{"prompt": "q"}\n', "a prompt/completion record needs both fields"),
    "completion-only.jsonl": ('{"completion": "a"}\n', "a prompt/completion record needs both fields"),
    "prompt-number.jsonl": ('{"prompt": 1, "completion": "a"}\n', "must be a string"),
    "completion-array.jsonl": ('{"prompt": "q", "completion": [1]}\n', "must be a string"),
    "messages-string.jsonl": ('{"messages": "hi"}\n', "must be an array of"),
    "messages-empty.jsonl": ('{"messages": []}\n', "is empty"),
    "messages-numbers.jsonl": ('{"messages": [1, 2]}\n', "must be an object with \"role\" and \"content\""),
    "messages-no-content.jsonl": ('{"messages": [{"role": "user"}]}\n', "must be an object with \"role\" and \"content\""),
    "messages-bad-role.jsonl": ('{"messages": [{"role": "wizard", "content": "x"}]}\n', "expected \"system\", \"user\" or \"assistant\""),
    "messages-content-object.jsonl": ('{"messages": [{"role": "user", "content": {"a": 1}}]}\n', "must be a string"),
    "messages-nested-garbage.jsonl": ('{"messages": [{"role": "user", "content": "x", "extra": [[[[{}]]]]}, {"role": ["user"], "content": "y"}]}\n', "must be a string"),
    "truncated-object.jsonl": ('{"text": "unfinished\n', "malformed JSON"),
    "trailing-garbage.jsonl": ('{"text": "x"} trailing\n', "malformed JSON"),
    "single-quotes.jsonl": ("{'text': 'x'}\n", "malformed JSON"),
    "unquoted-key.jsonl": ('{text: "x"}\n', "malformed JSON"),
    "nested-garbage.jsonl": ('{"text": "a", "x": ' + "[" * 200 + "]" * 200 + '}\n{"text": {"text": {"text": "deep"}}}\n', "must be a string, found an object"),
    "deep-nesting.jsonl": ("[" * 5000 + "]" * 5000 + "\n", "malformed JSON"),
    "bad-escape.jsonl": ('{"text": "\\q"}\n', "malformed JSON"),
    "lone-surrogate-escape.jsonl": ('{"text": "\\ud800"}\n', "lone UTF-16 surrogate"),
    "lone-low-surrogate.jsonl": ('{"prompt": "\\udc00 x", "completion": "y"}\n', "lone UTF-16 surrogate"),
    "comment.jsonl": ('// a comment\n{"text": "x"}\n', "malformed JSON"),
    "two-objects-one-line.jsonl": ('{"text": "a"}{"text": "b"}\n', "malformed JSON"),
    "nan.jsonl": ('{"text": NaN}\n', "malformed JSON"),
    "mixed-errors.jsonl": ('{"text": "fine"}\n{"text": 7}\nnot json\n{"prompt": "only"}\n', "must be a string"),
    "duplicate-key-types.jsonl": ('{"text": "a", "text": 5}\n', "must be a string"),
}
for name, (data, expected) in jsonl.items():
    dataset(name, data, expected)
dataset("many-errors.jsonl", "".join('{"text": %d}\n' % i for i in range(500)), "and 400 more errors")
table("datasets/expected.tsv", ds)
table("datasets/generated.tsv", [
    ("single-line-100mb.txt", "longer than"),
    ("tiny-lines-1e6.jsonl", "and 999900 more errors"),
    ("single-line-100mb.jsonl", "longer than"),
    ("long-line.jsonl", "longer than"),
    ("long-document.txt", "longer than"),
])

# ---- specs ----------------------------------------------------------------------------------------------------
sp = []
def spec(name, text, expected):
    write(f"specs/{name}.json", text if isinstance(text, str) else json.dumps(text))
    sp.append((f"{name}.json", expected))

spec("not-json", "{steps: 3", "not valid JSON")
spec("array", "[1, 2]", "must be a JSON object")
spec("string", '"steps"', "must be a JSON object")
spec("null", "null", "must be a JSON object")
spec("unknown-strategy", {"strategy": "magic"}, "strategy")
spec("strategy-number", {"strategy": 3}, "strategy")
spec("negative-steps", {"steps": -5}, "steps")
spec("zero-steps", {"steps": 0}, "steps")
spec("steps-string", {"steps": "ten"}, "steps")
spec("steps-float", {"steps": 2.5}, "steps")
spec("absurd-steps", {"steps": 10**12}, "steps")
spec("nan-learning-rate", '{"learningRate": NaN}', "not valid JSON")
spec("nan-string-learning-rate", {"learningRate": "NaN"}, "learningRate")
spec("negative-learning-rate", {"learningRate": -0.1}, "learningRate")
spec("huge-learning-rate", {"learningRate": 1e9}, "learningRate")
spec("infinite-learning-rate", '{"learningRate": 1e999}', "learningRate")
spec("absurd-batch", {"batchSize": 10**7}, "batchSize")
spec("zero-batch", {"batchSize": 0}, "batchSize")
spec("absurd-block", {"blockSize": 10**7}, "blockSize")
spec("negative-block", {"blockSize": -1}, "blockSize")
spec("negative-warmup", {"warmupSteps": -1}, "warmupSteps")
spec("bad-validation-fraction", {"validationFraction": 1.5}, "validationFraction")
spec("negative-validation-fraction", {"validationFraction": -0.1}, "validationFraction")
spec("bad-precision", {"precision": "fp4"}, "precision")
spec("unknown-field", {"stepz": 10}, "did you mean 'steps'")
spec("unknown-field-far", {"colour": "blue"}, "colour")
spec("unknown-base-model", {"baseModel": "no-such-model"}, "base model 'no-such-model' was not found")
spec("unknown-base-alias", {"baseModel": "no-such-model@champion"}, "was not found")
spec("base-model-traversal", {"baseModel": "../../etc"}, "baseModel")
spec("base-model-absolute", {"baseModel": "/etc/passwd"}, "baseModel")
spec("cron-six-fields", {"retrain": {"cron": "0 0 3 * * * *"}}, "retrain.cron")
spec("cron-words", {"retrain": {"cron": "every night"}}, "retrain.cron")
spec("cron-out-of-range", {"retrain": {"cron": "61 * * * *"}}, "retrain.cron")
spec("cron-bad-month", {"retrain": {"cron": "0 3 * 13 *"}}, "retrain.cron")
spec("cron-empty", {"retrain": {"cron": ""}}, "retrain.cron")
spec("cron-number", {"retrain": {"cron": 5}}, "retrain")
spec("unknown-time-zone", {"retrain": {"cron": "0 3 * * *", "timeZone": "Mars/Olympus"}}, "retrain.timeZone")
spec("retrain-unknown-field", {"retrain": {"crontab": "0 3 * * *"}}, "retrain")
spec("gate-out-of-range", {"gate": {"minImprovementOverBase": 5}}, "gate.minImprovementOverBase")
spec("gate-string", {"gate": "strict"}, "gate")
spec("max-attempts-zero", {"maxAttempts": 0}, "maxAttempts")
spec("max-attempts-huge", {"maxAttempts": 1000}, "maxAttempts")
spec("debounce-negative", {"debounceSeconds": -1}, "debounceSeconds")
spec("eval-every-negative", {"evalEvery": -3}, "evalEvery")
spec("lora-rank-zero", {"strategy": "lora", "loraRank": 0}, "loraRank")
spec("distill-bad-alpha", {"strategy": "distill", "distillAlpha": 2}, "distillAlpha")
spec("seed-string", {"seed": "lucky"}, "seed")
spec("deeply-nested", '{"gate": {"x": ' + "[" * 100 + "]" * 100 + "}}", "maximum configured depth")
table("specs/expected.tsv", sp)

# ---- names ----------------------------------------------------------------------------------------------------
nm = []
def name(kind, value, expected):
    nm.append((kind + "\t" + json.dumps(value), expected))
for v, why in [("..", "'..' segment"), ("../x", "'..' segment"), ("a/../../b", "'..' segment"), ("a/..", "'..' segment"), ("./a", "'.' or '..' segment"),
               ("a/./b", "'.' or '..' segment"), ("a//b", "empty, '.' or '..' segment"), ("a/", "empty, '.' or '..' segment"), ("/etc/passwd", "starts with '/'"),
               ("/", "starts with '/'"), ("\\\\server\\share", "backslash"), ("a\\..\\b", "backslash"), ("C:\\x", "backslash"), ("", "empty"),
               ("a\x00b", "control character"), ("a\nb", "control character"), ("a\tb", "control character"), ("\x1b[31m", "control character"),
               ("a\u0085b", "control character"), ("x" * 1025, "longer than 1024"), ("a/" * 600 + "b", "longer than 1024")]:
    name("blob", v, why)
for v in ["Poems", "POEMS", "poems!", "-poems", ".poems", "_poems", "po ems", "po/ems", "..", "", "x" * 65, "poëms", "po\u200bems", "poems\n", "a:b", "CON", "Poems-V2"]:
    name("model", v, "not a valid model name")
for v in ["ab", "A-container", "-abc", "abc-", "a" * 64, "ab_c", "a..b", "a/b"]:
    name("container", v, "not a valid container name")
name("files-differing-in-case", ["Train.txt", "train.txt"], "differ only in case")
name("files-differing-in-case", ["DATA.jsonl", "data.jsonl", "Data.jsonl"], "differ only in case")
table("names.tsv", [(a, b) for a, b in nm])

# ---- models ---------------------------------------------------------------------------------------------------
table("models/mutations.tsv", [
    ("truncate-to-4-bytes", "is truncated"),
    ("truncate-to-0-bytes", "is truncated"),
    ("truncate-data", "outside the data section"),
    ("truncate-header", "past the end of the file"),
    ("header-length-huge", "past the end of the file"),
    ("header-length-over-limit", "the most we accept"),
    ("header-length-small", "header"),
    ("header-not-json", "not a JSON object"),
    ("header-json-array", "JSON object"),
    ("header-duplicate-tensor", "twice"),
    ("overlapping-offsets", "overlapping tensors"),
    ("offsets-reversed", "outside the data section"),
    ("offsets-negative", "outside the data section"),
    ("offsets-three-numbers", "it needs [begin, end]"),
    ("offsets-past-end", "outside the data section"),
    ("wrong-dtype-string", "unknown dtype 'F33'"),
    ("dtype-lowercase", "unknown dtype"),
    ("dtype-number", "required dtype (string)"),
    ("shape-overflow", "overflows"),
    ("shape-negative", "not a non-negative integer"),
    ("shape-float", "not a non-negative integer"),
    ("shape-size-mismatch", "but its data_offsets span"),
    ("missing-shape", "required dtype (string), shape (array)"),
    ("metadata-not-string", "__metadata__"),
    ("pickle-named-safetensors", "pickle"),
    ("pickle-bin-only", "pickle"),
    ("config-more-layers", "does not match its config.json"),
    ("config-wider", "does not match its config.json"),
    ("config-vocab-bigger", "does not match its config.json"),
    ("config-not-json", "is not valid JSON"),
    ("config-null", "holds null"),
    ("config-bad-heads", "must be a multiple of n_head"),
    ("config-zero-layers", "it must be between 1 and"),
    ("config-unknown-tokenizer", "serverless_tokenizer"),
    ("missing-config", "config.json"),
    ("missing-weights", "model.safetensors"),
    ("tensor-missing", "does not match its config.json"),
])

# ---- events ---------------------------------------------------------------------------------------------------
good = {"specversion": "1.0", "id": "e1", "source": "/tests", "type": "FineTuneRequested", "subject": "m", "time": "2026-11-28T00:00:00Z",
        "data": {"model": "m", "trigger": "upload", "triggerKey": "upload"}}
ev = []
def event(case, body, expected):
    ev.append((case + "\t" + json.dumps(body if isinstance(body, str) else json.dumps(body)), expected))
text = json.dumps(good)
for cut in [1, 10, 40, len(text) // 2, len(text) - 1]:
    event(f"truncated-at-{cut}", text[:cut], "Not a CloudEvents JSON document")
event("empty", "", "Not a CloudEvents JSON document")
event("json-null", "null", "JSON null")
event("json-array", "[]", "Not a CloudEvents JSON document")
event("json-string", '"hello"', "Not a CloudEvents JSON document")
event("binary", "\u0000\u0001\u0002", "Not a CloudEvents JSON document")
event("missing-data", {k: v for k, v in good.items() if k != "data"}, "data")
event("data-null", {**good, "data": None}, "has no 'data'")
event("missing-type", {k: v for k, v in good.items() if k != "type"}, "type")
event("empty-type", {**good, "type": ""}, "has no 'type'")
event("missing-id", {k: v for k, v in good.items() if k != "id"}, "id")
event("wrong-type", {**good, "type": "ModelPublished"}, "not a 'FineTuneRequested'")
event("unknown-type", {**good, "type": "Exploded"}, "not a 'FineTuneRequested'")
event("wrong-specversion", {**good, "specversion": "0.3"}, "specversion '0.3'")
event("data-wrong-shape", {**good, "data": {"model": 5}}, "data that does not match")
event("data-array", {**good, "data": [1, 2]}, "data that does not match")
event("data-string", {**good, "data": "model=m"}, "data that does not match")
event("time-garbage", {**good, "time": "yesterday"}, "Not a CloudEvents JSON document")
event("bad-model-name", {**good, "data": {"model": "../../etc", "trigger": "upload", "triggerKey": "upload"}}, "not a valid model name")
table("events.tsv", ev)

counts = {"datasets": len(ds) + 6, "specs": len(sp), "names": len(nm), "models": 37, "events": len(ev)}
print(counts, "total", sum(counts.values()))

# ---- images and audio -----------------------------------------------------------------------------------------
# Each case is a dataset folder (media/<case>/, class folders inside when the case needs them) prepared against an
# image or an audio base model; media/expected.tsv: <case> TAB <modality of the base> TAB <substring of the error>.
import struct, zlib

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

def png(width, height, depth=8, extra=b"", rows=None):
    sample = 2 if depth == 16 else 1
    raw = rows if rows is not None else b"".join(b"\x00" + bytes((x * 37 + y * 11) % 256 for x in range(width * sample)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)) + extra
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

def wav(tag=1, channels=1, rate=8000, bits=16, data=None, declared=None):
    data = data if data is not None else bytes(range(256)) * 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body

good_png = png(16, 16)
md = []
def media(case, modality, files, expected):
    for path, data in files.items():
        write(f"media/{case}/{path}", data)
    md.append((f"{case}\t{modality}", expected))

media("png-corrupt", "image", {"a.png": good_png[:33] + chunk(b"IDAT", b"this is not zlib data at all") + chunk(b"IEND", b"")}, "the PNG is")
media("png-truncated", "image", {"a.png": good_png[: len(good_png) - 40]}, "truncated")
media("png-empty", "image", {"a.png": b""}, "the file is empty")
media("png-one-pixel", "image", {"a.png": png(1, 1)}, "at least 2 pixels")
media("png-bomb", "image", {"a.png": png(100000, 100000, rows=b"\x00" * 64)}, "decompression bomb")
media("png-animated", "image", {"a.png": png(16, 16, extra=chunk(b"acTL", struct.pack(">II", 3, 0)))}, "animated PNG with 3 frames")
media("png-is-text", "image", {"a.png": b"hello, I am a text file\n"}, "its content is text")
media("png-is-gif", "image", {"a.png": b"GIF89a" + b"\x00" * 32}, "its content is a GIF")
media("jpeg-truncated", "image", {"a.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"}, "the JPEG is truncated")
jpeg_sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 16, 16, 1) + b"\x01\x11\x00"
media("jpeg-corrupt", "image", {"a.jpg": b"\xff\xd8" + jpeg_sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + bytes(range(200)) + b"\xff\xd9"}, "the JPEG is")
media("png-zero-size", "image", {"a.png": png(0, 0, rows=b"")}, "at least 2 pixels")
media("png-bad-ihdr", "image", {"a.png": b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", b"\x00" * 5)}, "IHDR chunk is not 13 bytes")
media("class-with-one-file", "image", {"A/a.png": good_png, "B/b.png": good_png, "B/c.png": png(16, 8)}, "holds only this file")
media("classes-and-loose-files", "image", {"A/a.png": good_png, "A/b.png": png(8, 16), "c.png": png(12, 12)}, "put every file in a class folder or none")
media("mixed-modalities", "image", {"a.png": good_png, "b.wav": wav()}, "mixes modalities")
media("wrong-modality", "image", {"a.wav": wav(), "b.wav": wav(rate=16000)}, "the base model reads image")
media("wav-lying-header", "audio", {"a.wav": wav(declared=1_000_000)}, "but the file holds only")
media("wav-zero-samples", "audio", {"a.wav": wav(data=b"")}, "no samples")
media("wav-adpcm", "audio", {"a.wav": wav(tag=2, bits=4)}, "Microsoft ADPCM")
media("wav-mp3", "audio", {"a.wav": wav(tag=0x55, bits=0)}, "MP3")
media("wav-rate-5hz", "audio", {"a.wav": wav(rate=5)}, "sample rate of 5 Hz")
media("wav-rate-10mhz", "audio", {"a.wav": wav(rate=10_000_000)}, "sample rate of 10,000,000 Hz")
media("wav-is-text", "audio", {"a.wav": b"RIFF? no, just words in a file\n"}, "its content is text")
media("wav-is-png", "audio", {"a.wav": good_png}, "not a WAV (RIFF/WAVE) file")
media("wav-empty", "audio", {"a.wav": b""}, "the file is empty")
media("wav-no-data-chunk", "audio", {"a.wav": wav()[:36]}, "no data chunk")
media("wav-zero-channels", "audio", {"a.wav": wav(channels=0)}, "declares 0 channels")
media("wav-float-16bit", "audio", {"a.wav": wav(tag=3, bits=16)}, "is not supported")
table("media/expected.tsv", md)
