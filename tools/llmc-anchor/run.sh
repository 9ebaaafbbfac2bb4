#!/usr/bin/env bash
# The llm.c anchor of README's "Performance": times karpathy/llm.c's CPU reference trainer (train_gpt2.c: GPT-2 124M,
# batch 4 × 64, AdamW, float32) on this machine, next to `tune bench`.
#
#   tools/llmc-anchor/run.sh LLM_C_CHECKOUT [seconds]     (default 100 s: the first 7–8 steps on 2 cores)
#
# Nothing is downloaded: make_inputs.py writes a 124M checkpoint in llm.c's format with random weights and token files
# of random ids (the step time does not depend on the values); without a tokenizer file llm.c prints ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$1" && pwd)
seconds=${2:-100}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/llmc" "$work/dev/data/tinyshakespeare"
cp "$src/train_gpt2.c" "$work/"
cp "$src"/llmc/{utils,tokenizer,dataloader,rand}.h "$work/llmc/"
cd "$work"
python3 "$here/make_inputs.py"
gcc -Ofast -march=native -fopenmp train_gpt2.c -lm -o train_gpt2
OMP_NUM_THREADS=$(nproc) timeout "$seconds" stdbuf -oL ./train_gpt2 | grep -E '^step' || true
