#!/usr/bin/env bash
# Reproduction of the paper's text results on the CAD release (val split; not part of CI).
# Usage: bash bench/reproduce_text.sh [CAD_DIR] [OUT_DIR]     (well under the hour it took before the fast trainer; IMDb alone: 5.5 min)
set -euo pipefail
CAD=${1:-../shared/data/cad}
OUT=${2:-runs/text}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
$BIN/cfbuild imdb --cad-dir "$CAD" --out "$OUT/imdb.h5" --force
$BIN/cfbuild imdb --cad-dir "$CAD" --out "$OUT/imdb32.h5" --max-tokens 32 --force
$BIN/cfbuild snli --cad-dir "$CAD" --out "$OUT/snli.h5" --force
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-table" --threads 1 --force
$BIN/cftrain table "$OUT/imdb32.h5" --out "$OUT/imdb32-table" --threads 1 --force
$BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-table" --threads 1 --force
