"""The n-gram models against brute force: hashed n-grams of a text as a set, Naive Bayes log-count
ratios counted with Python sets, the fastText mean and the NB-weighted mean of embeddings, and the
ratios kept in model.pt."""

from __future__ import annotations

import math

import numpy as np
import torch

from cfpairs import open_store
from cftrain.data import load_split
from cftrain.models import make_model
from cftrain.models.ngrams import ngram_ids
from cftrain.presets import resolve
from cftrain.parts import RunParts
from cftrain.train import build_members

P = 1_000_003


def brute_ngrams(tokens: list, vocab: int, n: int, buckets: int) -> set:
    """A text's distinct n-gram ids, written out the slow way."""
    out = set(tokens)
    for k in range(2, n + 1):
        for i in range(len(tokens) - k + 1):
            h = tokens[i]
            for t in tokens[i + 1:i + k]:
                h = (h * P + t) % buckets
            out.add(vocab + h)
    return out


def test_ngram_ids_are_each_texts_distinct_ngrams():
    rng = np.random.default_rng(0)
    tokens = torch.as_tensor(rng.integers(1, 12, size=(6, 9)))
    length = torch.tensor([9, 4, 1, 0, 7, 2])
    tokens[torch.arange(9)[None, :] >= length[:, None]] = 0  # padding past each text
    tokens[0, 4:8] = tokens[0, 0:4]                          # a repeated phrase counts once
    for n, buckets in ((1, 5), (2, 7), (3, 1000)):
        ids, lengths = ngram_ids(tokens, length, 12, n, buckets)
        for row in range(6):
            real = tokens[row, :length[row]].tolist()
            got = ids[row, :lengths[row]].tolist()
            assert got == sorted(brute_ngrams(real, 12, n, buckets)), (n, row)
            assert (ids[row, lengths[row]:] == 0).all()


def test_a_hand_worked_text():
    ids, lengths = ngram_ids(torch.tensor([[5, 6, 5, 6]]), torch.tensor([4]), 10, 2, 7)
    # words 5, 6; bigrams (5,6) twice and (6,5), after the 10 words: P = 1,000,003 = 4 mod 7, so
    # (5P + 6) mod 7 = 26 mod 7 = 5 -> 15 and (6P + 5) mod 7 = 29 mod 7 = 1 -> 11
    assert ids.tolist() == [[5, 6, 11, 15]] and lengths.tolist() == [4]


def texts_of(store, split: str) -> list:
    e = store[split].examples
    return [e["tokens"][i][:e["length"][i]].tolist() for i in range(len(e["label"]))]


def test_nb_ratios_are_naive_bayes_log_count_ratios_counted_by_hand(stores):
    with open_store(stores["text"]) as store:
        config = resolve(store.task, store.input_kind, mode="augmented", model="nb-ngrams", ngram_buckets=50)
        model = build_members(RunParts.of(config, store), store)[0]
        vocab, labels = len(store.vocab), store["train"].examples["label"]
        sets = [brute_ngrams(t, vocab, 2, 50) for t in texts_of(store, "train")]
    rows = vocab + 50
    p, q = np.ones(rows), np.ones(rows)
    for found, y in zip(sets, labels):
        for f in found:
            (p if y == 1 else q)[f] += 1
    expected = np.log(p / p.sum()) - np.log(q / q.sum())
    np.testing.assert_allclose(model.ratios.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_more_classes_weigh_each_ngram_by_its_largest_one_against_rest_ratio():
    class Split:  # three texts of three classes: word 2 in class 0 and 1, word 3 in class 2 only
        inputs = {"tokens": torch.tensor([[2, 0], [2, 0], [3, 0]]), "length": torch.tensor([1, 1, 1])}
        targets = torch.eye(3)
        labels = torch.tensor([0, 1, 2])

    model = make_model("nb-ngrams", vocab_size=4, n_outputs=3, ngrams=1)
    model.prepare(Split(), {})
    # one class against the rest, a = 1 over 4 rows: class 2 holds word 3 once of its 1 text, the rest never
    p = np.array([1, 1, 1, 2.0])      # class 2's counts + 1 (rows 0..3)
    q = np.array([1, 1, 3, 1.0])      # classes 0 and 1: word 2 twice
    r2 = np.log(p / p.sum()) - np.log(q / q.sum())
    p0, q0 = np.array([1, 1, 2, 1.0]), np.array([1, 1, 2, 2.0])
    r0 = np.log(p0 / p0.sum()) - np.log(q0 / q0.sum())
    expected = np.maximum(np.maximum(np.abs(r0), np.abs(r0)), np.abs(r2))  # class 1 mirrors class 0
    np.testing.assert_allclose(model.ratios.numpy(), expected, rtol=1e-6)


def test_the_models_encode_means_over_distinct_ngrams(stores):
    with open_store(stores["text"]) as store:
        data = load_split(store, "val")
        vocab = len(store.vocab)
        texts = texts_of(store, "val")
        for name in ("fasttext", "nb-ngrams"):
            config = resolve(store.task, store.input_kind, mode="augmented", model=name, ngram_buckets=64)
            model = build_members(RunParts.of(config, store), store)[0]
            x = model.encode(data.batch(np.arange(len(data))))
            weight = model.embed.weight.detach()
            ratios = model.ratios if name == "nb-ngrams" else torch.ones(len(weight))
            for row, tokens in enumerate(texts):
                found = sorted(brute_ngrams(tokens, vocab, 2, 64))
                expected = (weight[found] * ratios[found, None]).mean(0)
                torch.testing.assert_close(x[row], expected, rtol=1e-5, atol=1e-6)


BUCKETS = 64  # few hashed bigram rows: the counts, not the table's size, are checked


def test_nb_ratios_come_from_the_rows_the_method_trains_on(stores, tmp_path):
    """The row without edited data counts the originals only; model.pt keeps the ratios."""
    from cftrain.rundir import RunDir
    from cftrain.train import run

    for mode in ("original", "augmented"):
        with open_store(stores["text"]) as store:
            config = resolve(store.task, store.input_kind, mode=mode, model="nb-ngrams", epochs=1, ngram_buckets=BUCKETS)
        run(stores["text"], tmp_path / mode, config)
    kept = {mode: RunDir(tmp_path / mode).load_members()[0].ratios for mode in ("original", "augmented")}
    with open_store(stores["text"]) as store:
        vocab, e = len(store.vocab), store["train"].examples
        sets = [brute_ngrams(t, vocab, 2, BUCKETS) for t in texts_of(store, "train")]
        p, q = {}, {}
        for found, y, edited in zip(sets, e["label"], e["is_counterfactual"]):
            if not edited:
                for f in found:
                    (p if y == 1 else q)[f] = (p if y == 1 else q).get(f, 0) + 1
    rows = vocab + BUCKETS
    f = next(iter(p))
    expected = math.log((1 + p[f]) / (rows + sum(p.values()))) - math.log((1 + q.get(f, 0)) / (rows + sum(q.values())))
    assert abs(float(kept["original"][f]) - expected) < 1e-4
    assert not torch.equal(kept["original"], kept["augmented"])
