"""VQA-CP v2 questions and annotations, read into compact numpy tables.

Both files of a split are bare JSON lists, streamed element by element. Each
annotation's ten answers are normalised as the VQA evaluation does (punctuation,
number words, articles, contractions) and kept as (answer id, count) runs: a few
integers per question instead of ten dicts.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cfpairs.arrays import concat_ranges, index_of
from cfpairs.errors import UserError
from cfpairs.progress import Progress
from cfbuild.sources.jsonlist import iter_json_list

SPLIT_FILES = ("vqacp_v2_{split}_questions.json", "vqacp_v2_{split}_annotations.json")

# ---------------------------------------------------------------- answer normalisation (VQA evaluation)

_PUNCTUATION = ";/[]\"{}()=+\\_-><@`,?!"
_DIGIT_COMMA = re.compile(r"\d,\d")
_PERIOD = re.compile(r"\.(?!\d)")  # a period not followed by a digit ("2.5" keeps its point)
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = {"a", "an", "the"}
_CONTRACTED = """ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't
    haven't he'd he'd've he's how'd how'll how's isn't it'd it'd've it'll let's ma'am mightn't mightn't've
    might've mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've she's should've
    shouldn't shouldn't've somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's
    something'd something'd've something'll that's there'd there'd've there're there's they'd they'd've
    they'll they're they've 'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd
    where's where've who'd who'd've who'll who's who've why'll why're why's won't would've wouldn't
    wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've""".split()


def _contraction_map() -> dict[str, str]:
    """Each contraction written with one or more of its apostrophes left out -> the full form."""
    table = {}
    for word in _CONTRACTED:
        cuts = [i for i, ch in enumerate(word) if ch == "'"]
        for r in range(1, len(cuts) + 1):
            for dropped in itertools.combinations(cuts, r):
                table["".join(ch for i, ch in enumerate(word) if i not in dropped)] = word
    return table


_CONTRACTIONS = _contraction_map()


def normalize_answer(answer: str) -> str:
    """An answer as the VQA evaluation compares it (and as bottom-up's soft scores count it)."""
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    # punctuation next to a space, or any when the text has a digit group comma, is deleted; else it separates
    glue = _DIGIT_COMMA.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        out = out.replace(mark, "" if glue or f"{mark} " in text or f" {mark}" in text else " ")
    out = _PERIOD.sub("", out)
    words = [_NUMBER_WORDS.get(w, w) for w in out.lower().split()]
    words = [_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words).replace(",", "")


def tokenize_question(question: str) -> list[str]:
    """Bottom-up-attention VQA's question tokens: lower case, ',' and '?' dropped, "'s" split off.

    Kept identical to the BUTD models' preprocessing (so GloVe lookups match theirs)
    and fast: spaCy's tokenizer (~20k texts/s here) would dominate a 658k-question build.
    """
    return question.lower().replace(",", "").replace("?", "").replace("'s", " 's").split()


# ---------------------------------------------------------------- tables


@dataclass
class VqaSplit:
    """One VQA-CP split, row i = one question, joined with its annotation."""
    question_id: np.ndarray      # (N,) int64
    image_id: np.ndarray         # (N,) int64
    question: list               # (N,) str
    question_type: np.ndarray    # (N,) object str
    answer_type: np.ndarray      # (N,) object str
    answer_offsets: np.ndarray   # (N+1,) int64 into answer_ids / answer_counts
    answer_ids: np.ndarray       # distinct normalised answers of each question (ids into an AnswerIndex)
    answer_counts: np.ndarray    # how many of the ten annotators gave it
    mc_answer: np.ndarray        # (N,) int64 id of the normalised multiple_choice_answer
    sha256: dict                 # file name -> sha256 of what was read

    def __len__(self) -> int:
        return len(self.question_id)

    def take(self, rows: np.ndarray) -> "VqaSplit":
        """The questions at `rows` (in that order)."""
        starts = self.answer_offsets[rows]
        lengths = self.answer_offsets[rows + 1] - starts
        flat = concat_ranges(starts, lengths)
        return VqaSplit(self.question_id[rows], self.image_id[rows], [self.question[i] for i in rows],
                        self.question_type[rows], self.answer_type[rows],
                        np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                        self.answer_ids[flat], self.answer_counts[flat], self.mc_answer[rows], self.sha256)


class AnswerIndex:
    """Normalised answer strings <-> ids, shared by every split; normalisation cached per raw string."""

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self._raw: dict[str, int] = {}

    def id_of(self, raw: str) -> int:
        found = self._raw.get(raw)
        if found is None:
            name = normalize_answer(raw)
            found = self.ids.setdefault(name, len(self.names))
            if found == len(self.names):
                self.names.append(name)
            self._raw[raw] = found
        return found


def split_files(vqacp_dir, split: str) -> tuple[Path, Path]:
    return tuple(Path(vqacp_dir) / name.format(split=split) for name in SPLIT_FILES)


def read_split(vqacp_dir, split: str, answers: AnswerIndex) -> VqaSplit:
    """Questions and annotations of `split` ('train' or 'test'), joined on question_id."""
    q_path, a_path = split_files(vqacp_dir, split)
    missing = [str(p) for p in (q_path, a_path) if not p.is_file()]
    if missing:
        raise UserError(f"VQA-CP {split} files missing: {', '.join(missing)}")
    shas: dict = {}
    total = q_path.stat().st_size + a_path.stat().st_size
    with Progress(total, f"vqacp {split}", unit="B", unit_scale=True) as bar:
        questions = _read_questions(q_path, shas, bar.update)
        annotations = _read_annotations(a_path, answers, shas, bar.update)
    return _join(q_path, a_path, questions, annotations, shas)


def _field(path: Path, index: int, item, key: str):
    try:
        return item[key]
    except (KeyError, TypeError):
        raise UserError(f"{path}: element {index} has no {key!r}") from None


def _read_questions(path: Path, shas: dict, on_bytes) -> dict:
    qid, image, text, sha = [], [], [], []
    for i, item in enumerate(iter_json_list(path, sha, on_bytes)):
        qid.append(_field(path, i, item, "question_id"))
        image.append(_field(path, i, item, "image_id"))
        text.append(str(_field(path, i, item, "question")))
    shas[path.name] = sha[0]
    return {"question_id": _int_array(path, "question_id", qid), "image_id": _int_array(path, "image_id", image),
            "question": text}


def _read_annotations(path: Path, answers: AnswerIndex, shas: dict, on_bytes) -> dict:
    cols = {k: [] for k in ("question_id", "image_id", "question_type", "answer_type", "mc")}
    offsets, ids, counts, sha = [0], [], [], []
    for i, item in enumerate(iter_json_list(path, sha, on_bytes)):
        for key in ("question_id", "image_id", "question_type", "answer_type"):
            cols[key].append(_field(path, i, item, key))
        cols["mc"].append(answers.id_of(str(_field(path, i, item, "multiple_choice_answer"))))
        tally: dict[int, int] = {}
        for answer in _field(path, i, item, "answers"):
            a = answers.id_of(str(_field(path, i, answer, "answer")))
            tally[a] = tally.get(a, 0) + 1
        ids.extend(tally)
        counts.extend(tally.values())
        offsets.append(len(ids))
    shas[path.name] = sha[0]
    return {"question_id": _int_array(path, "question_id", cols["question_id"]),
            "image_id": _int_array(path, "image_id", cols["image_id"]),
            "question_type": np.array(cols["question_type"], dtype=object),
            "answer_type": np.array(cols["answer_type"], dtype=object),
            "mc": np.array(cols["mc"], np.int64), "offsets": np.array(offsets, np.int64),
            "ids": np.array(ids, np.int64), "counts": np.array(counts, np.int32)}


def _int_array(path: Path, key: str, values: list) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        bad = next(i for i, v in enumerate(values) if not isinstance(v, int))
        raise UserError(f"{path}: element {bad}: {key} {values[bad]!r} is not an integer") from None


def _join(q_path: Path, a_path: Path, q: dict, a: dict, shas: dict) -> VqaSplit:
    for path, ids in ((q_path, q["question_id"]), (a_path, a["question_id"])):
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise UserError(f"{path}: question_id {uniq[counts > 1][0]} appears more than once")
    q_row = index_of(q["question_id"], a["question_id"])  # annotation i belongs to question q_row[i]
    found = q_row >= 0
    if not found.all():
        raise UserError(f"{a_path}: annotation of question_id {a['question_id'][~found][0]} has no question "
                        f"in {q_path.name} ({(~found).sum()} such annotations)")
    if len(a["question_id"]) < len(q["question_id"]):
        lonely = np.setdiff1d(q["question_id"], a["question_id"])
        raise UserError(f"{q_path}: question_id {lonely[0]} has no annotation in {a_path.name} "
                        f"({len(lonely)} such questions)")
    clash = np.flatnonzero(q["image_id"][q_row] != a["image_id"])
    if clash.size:
        raise UserError(f"{a_path}: question_id {a['question_id'][clash[0]]}: image_id {a['image_id'][clash[0]]} "
                        f"differs from the question's {q['image_id'][q_row[clash[0]]]}")
    joined = VqaSplit(a["question_id"], a["image_id"], [q["question"][i] for i in q_row], a["question_type"],
                      a["answer_type"], a["offsets"], a["ids"], a["counts"], a["mc"], shas)
    return joined.take(np.argsort(q_row, kind="stable"))  # back to the questions file's order
