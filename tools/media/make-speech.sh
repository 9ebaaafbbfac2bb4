#!/usr/bin/env bash
# Synthesizes the speech corpus of the audio demo (see data/README.md) with espeak-ng from the shipped texts:
# three male voices for pre-training (class folder per voice) and one female voice the base never heard for
# fine-tuning; 8 kHz μ-law WAV (sox, no dither), packed into data/media/speech.tar.gz. Deterministic.
# Needs: apt-get install espeak-ng sox
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v espeak-ng >/dev/null && command -v sox >/dev/null || { echo "apt-get install espeak-ng sox" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

# speak VOICE SPEED TEXTFILE OUT: one file, 22.05 kHz from espeak-ng, then 8 kHz mono μ-law.
speak() { espeak-ng -v "$1" -s "$2" -w "$work/raw.wav" -f "$3"; sox -D "$work/raw.wav" -r 8000 -c 1 -e u-law -b 8 "$4"; }

# Text: verses of Genesis (pre-training) and fortunes (fine-tuning), about 25 words a file.
zcat data/demo/kjv.txt.gz | tr -s '\n' ' ' | tr -s ' ' '\n' | sed -n 1,1200p > "$work/kjv.words"
zcat data/demo/fortunes.jsonl.gz | python3 -c 'import json,sys; [print(json.loads(l)["text"]) for l in sys.stdin]' | tr -s '\n' ' ' | tr -s ' ' '\n' | sed -n 1,600p > "$work/fortune.words"
chunk() { sed -n "$(( $2 * 25 + 1 )),$(( $2 * 25 + 25 ))p" "$1" | tr '\n' ' '; }

out="$work/speech"
n=0
for voice in "en-us+m3:us" "en-gb-scotland+m1:scotland" "en-029+m2:caribbean"; do
  mkdir -p "$out/base/${voice#*:}"
  for i in 0 1 2 3 4 5; do
    chunk "$work/kjv.words" $(( n )) > "$work/t.txt"; n=$(( n + 1 ))
    speak "${voice%%:*}" 165 "$work/t.txt" "$out/base/${voice#*:}/$i.wav"
  done
done
mkdir -p "$out/new/female"
for i in 0 1 2; do
  chunk "$work/fortune.words" $i > "$work/t.txt"
  speak "en-us+f3" 165 "$work/t.txt" "$out/new/female/$i.wav"
done
mkdir -p data/media
tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner -C "$out" -cf - . | gzip -9n > data/media/speech.tar.gz
ls -l data/media/speech.tar.gz
