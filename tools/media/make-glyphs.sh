#!/usr/bin/env bash
# Renders the glyph corpus of the image demo (tools/media/render-glyphs.cs, SkiaSharp) and packs it into
# data/media/glyphs.tar.gz. Deterministic. Needs: apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
dotnet run tools/media/render-glyphs.cs -- "$work/glyphs"
mkdir -p data/media
tar --sort=name --mtime=2026-01-01 --owner=0 --group=0 --numeric-owner -C "$work/glyphs" -cf - . | gzip -9n > data/media/glyphs.tar.gz
ls -l data/media/glyphs.tar.gz
