#!/usr/bin/env bash
# Rebuilds data/demo/*.gz from Debian packages (bible-kjv, fortunes). Run once by a maintainer;
# the demo and the tests only read the committed .gz files, never the network or these packages.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v bible >/dev/null || { echo "apt-get install bible-kjv fortunes" >&2; exit 1; }

# King James Bible, verse prefixes ("Ge1:1 ") stripped, one chapter per document (blank line between),
# the first ~1.6 MB (Genesis to the Psalms): the pre-training domain.
bible -f "Genesis 1:1-Revelation 22:21" \
  | python3 -c '
import re, sys
chapter, out = None, []
for line in sys.stdin:
    m = re.match(r"^([0-9]?[A-Za-z]+)(\d+):(\d+) (.*)$", line.rstrip("\n"))
    if not m:
        continue
    key = (m.group(1), m.group(2))
    if key != chapter and out:
        out.append("")
    chapter = key
    out.append(m.group(4))
text = "\n".join(out) + "\n"
sys.stdout.write(text[: text.find("\n\n", 1_600_000) + 1])
' | gzip -9n > data/demo/kjv.txt.gz

# A slice of fortunes (the "fortunes", "wisdom", "science" and "computers" files) as JSONL: the target domain.
python3 - <<'PY' | gzip -9n > data/demo/fortunes.jsonl.gz
import json
for name in ["fortunes", "wisdom", "science", "computers"]:
    with open(f"/usr/share/games/fortunes/{name}", encoding="utf-8", errors="replace") as f:
        for entry in f.read().split("\n%\n"):
            entry = entry.strip("\n%")
            if entry.strip() and len(entry) < 2000:
                print(json.dumps({"text": entry + "\n"}))
PY
ls -la data/demo
