#!/usr/bin/env bash
# Pre-trains the text demo's base model offline and packs it into data/demo/demo-base.tar.gz, which `tune demo`
# installs on its first run instead of pre-training there. Run by a maintainer after changing the model shape or the
# corpus; the demo and the tests only read the committed archive.
#
#   tools/pretrain-demo-base.sh [steps]        (default: the steps in tools/demo-base-spec.json)
#
# Trains the `tiny` byte-level GPT-2 (4 layers, 128 wide, context 128) from scratch on the shipped King James Bible
# (data/demo/kjv.txt.gz) with tools/demo-base-spec.json, and prints the time it took. The archive holds config.json,
# model.safetensors (float32, Hugging Face's GPT-2 layout) and pretraining.json (steps, tokens, validation score).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
steps=()
[[ $# -ge 1 ]] && steps=(--steps "$1")
dotnet build src/Serverless.Cli -c Release -v q -nologo
start=$(date +%s)
artifacts/bin/Serverless.Cli/release/tune pretrain --corpus data/demo/kjv.txt.gz --size tiny --tokenizer bytes \
  --spec tools/demo-base-spec.json ${steps[@]+"${steps[@]}"} --out "$work/demo-base"
echo "pre-training took $(( $(date +%s) - start )) s"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work/demo-base" -cf - config.json model.safetensors pretraining.json \
  | gzip -9n > data/demo/demo-base.tar.gz
ls -l data/demo/demo-base.tar.gz
cat "$work/demo-base/pretraining.json"
