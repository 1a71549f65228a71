"""`cfbuild view`: the word diff and remarks by hand, the output rules, and the page in a real
browser (Chromium from the system, driven by Playwright): rows, search, filters, diff elements,
and with a run the consistency badges against the run's own predictions."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cfbuild.builders.table import build_table
from cfbuild.builders.toy import build_toy
from cfbuild.view import remarks_by_reference, word_diff
from cli.cfbuild import main as cfbuild_main
from tests.conftest import write_text_rows
from tests.helpers import refused

CHROMIUM = os.environ.get("CFPAIRS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def test_word_diff_marks_removed_and_added_words_and_escapes():
    before, after = word_diff("the film was <b>good</b> overall", "the film was bad overall")
    assert before == "the film was <del>&lt;b&gt;good&lt;/b&gt;</del> overall"
    assert after == "the film was <ins>bad</ins> overall"
    assert word_diff("a b c", "a b c") == ("a b c", "a b c")
    assert word_diff("x", "") == ("<del>x</del>", "")


def test_remarks_attach_to_the_rows_they_name():
    report = {"splits": {"train": {"notes": ["batch_id 12: neither rows found; the first row is taken",
                                             "2 edits also changed: revised_premise line 7, revised_premise line 9"],
                                   "low_overlap_pairs": [{"jaccard": 0.1, "pair": "batch_id 5"}]}}}
    found = remarks_by_reference(report, "train")
    assert set(found) == {"batch_id 12", "revised_premise:7", "revised_premise:9", "batch_id 5"}
    assert found["batch_id 5"] == ["low word overlap (Jaccard 0.1): batch_id 5"]
    assert remarks_by_reference(report, "val") == {}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    build_toy(root / "toy.h5", n=120, seed=0)
    rows = write_text_rows(root / "rows.jsonl", n=6)
    build_table({"train": rows, "val": rows}, root / "text.h5", text_cols=["a"], label_col="y", pair_col="g")
    from cftrain.presets import resolve  # noqa: PLC0415  (the trainer only where a fixture trains)
    from cftrain.train import run  # noqa: PLC0415
    run(root / "toy.h5", root / "toy-run", resolve("toy", mode="augmented", epochs=3, ensemble=2, threads=1))
    run(root / "text.h5", root / "text-run", resolve("table", "text", mode="augmented", epochs=1, threads=1))
    return root


def eval_predictions(run, store, out):
    """`cftrain eval RUN STORE --predictions OUT`: what cfbuild view --predictions reads."""
    from cli.cftrain import main as cftrain_main
    result = CliRunner().invoke(cftrain_main, ["eval", str(run), str(store), "--predictions", str(out), "--device",
                                               "cpu"])
    assert result.exit_code == 0, result.stderr
    return out


def view(*args) -> str:
    result = CliRunner().invoke(cfbuild_main, ["view", *[str(a) for a in args]])
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.stdout)
    return result.stdout


def test_view_follows_the_output_rules(stores, tmp_path):
    foreign = tmp_path / "mine.html"
    foreign.write_text("<html>my notes</html>")
    refused("cfbuild", ["view", stores / "toy.h5", "--out", foreign, "--force"], "mine.html", out=foreign)
    refused("cfbuild", ["view", stores / "toy.h5", "--out", tmp_path / "p.html", "--split", "dev"],
            "--split dev", "train, val, test, test_shifted", out=tmp_path / "p.html")
    predictions = eval_predictions(stores / "text-run", stores / "text.h5", tmp_path / "text.json")
    refused("cfbuild", ["view", stores / "toy.h5", "--out", tmp_path / "p.html", "--predictions", predictions],
            "made on another store", out=tmp_path / "p.html")
    assert not (tmp_path / "p.html").exists()
    view(stores / "toy.h5", "--out", tmp_path / "p.html")
    view(stores / "toy.h5", "--out", tmp_path / "p.html", "--split", "val", "--force")  # ours: replaced
    assert "split val" in (tmp_path / "p.html").read_text()


def test_a_cut_page_says_so(stores, tmp_path):
    out = view(stores / "toy.h5", "--out", tmp_path / "p.html", "--limit", "7")
    text = (tmp_path / "p.html").read_text()
    assert "7 of 120 pairs" in out and text.count("data-pair-id=") == 7
    assert "Showing the first 7 of 120 pairs" in text
    import cfpairs
    with cfpairs.open_store(stores / "toy.h5") as store:  # the summary's label counts, counted here
        labels = store["train"].examples["label"]
    negative, positive = int((labels == 0).sum()), int((labels == 1).sum())
    shown = sorted([("negative", negative), ("positive", positive)], key=lambda kv: -kv[1])
    assert f"<td>{shown[0][0]} {shown[0][1]}, {shown[1][0]} {shown[1][1]}</td>" in text


# ---------------------------------------------------------------- in a real browser

def _missing(reason: str):
    """Skip, saying why; under CI (which installs both, `.ci/run`) fail instead: never a silent pass."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install playwright)")
    if not CHROMIUM:
        _missing("no Chromium on PATH (apt-get install -y chromium, or set CFPAIRS_CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def opened(browser, path: Path):
    page = browser.new_page()
    page.goto(path.resolve().as_uri())
    return page



@pytest.mark.e2e
def test_toy_page_lists_every_pair_and_search_filters(browser, stores, tmp_path):
    import cfpairs
    view(stores / "toy.h5", "--out", tmp_path / "toy.html", "--split", "val")
    with cfpairs.open_store(stores / "toy.h5") as store:
        ids = [str(i) for i in store["val"].examples["id"]]
        n_pairs = len(store["val"].pairs)
    page = opened(browser, tmp_path / "toy.html")
    assert page.locator("[data-pair-id]").count() == n_pairs == 30
    assert page.locator("#splits tr").count() == 5  # header + 4 splits
    wanted = ids[7]  # one example's id: its pair alone matches (ids are unique, 7 digits)
    page.fill("input[type=search]", wanted)
    assert page.locator("[data-pair-id]:visible").count() == 1 == int(page.locator("#shown").text_content())
    page.fill("input[type=search]", "")
    page.select_option("#change", "same")
    assert page.locator("[data-pair-id]:visible").count() == 0  # every toy edit flips the label
    page.select_option("#change", "changed")
    assert page.locator("[data-pair-id]:visible").count() == n_pairs


@pytest.mark.e2e
def test_text_page_shows_the_hand_made_edit_as_a_word_diff(browser, stores, tmp_path):
    view(stores / "text.h5", "--out", tmp_path / "text.html")
    page = opened(browser, tmp_path / "text.html")
    first = page.locator('[data-pair-id="0"]')
    assert first.locator("del").all_text_contents() == ["good"]  # 'good film 0' (1) -> 'bad film 0' (0)
    assert first.locator("ins").all_text_contents() == ["bad"]
    assert first.get_attribute("data-kind") == "edited" and first.get_attribute("data-label-change") == "changed"
    page.fill("input[type=search]", "film 3")
    assert page.locator("[data-pair-id]:visible").count() == 1


@pytest.mark.e2e
def test_run_badges_are_the_runs_own_predictions(browser, stores, tmp_path):
    from cfpairs.api import PairStore
    from cftrain.data import load_split
    from cftrain.labels import predictions
    from cftrain.metrics import ensemble_logits
    from cftrain.rundir import RunDir

    page_json = eval_predictions(stores / "toy-run", stores / "toy.h5", tmp_path / "p.json")
    view(stores / "toy.h5", "--out", tmp_path / "run.html", "--split", "test", "--predictions", page_json)
    with PairStore(stores / "toy.h5") as store:
        data = load_split(store, "test")
    members = RunDir(stores / "toy-run").load_members()
    right = (predictions(ensemble_logits(members, data)) == data.labels).numpy()
    expected = [{(True, True): "both", (True, False): "original", (False, True): "edited",
                 (False, False): "none"}[(bool(right[o]), bool(right[e]))] for o, e in data.pairs]
    page = opened(browser, tmp_path / "run.html")
    rows = page.locator("[data-pair-id]")
    shown = rows.evaluate_all("rs => rs.map(r => [Number(r.dataset.pairId), r.dataset.correct])")
    assert [c for _, c in sorted(shown)] == expected
    metrics = json.loads((stores / "toy-run" / "metrics.json").read_text())
    consistency = metrics["consistency"]["test"]["all"]["consistency"]
    assert f"{consistency:.1f}%" in page.locator("#consistency").text_content()
    assert consistency == pytest.approx(100 * np.mean([c == "both" for c in expected]), abs=0.01)
    for badge in ("both", "original", "edited", "none"):
        page.select_option("#correct", badge)
        assert page.locator("[data-pair-id]:visible").count() == expected.count(badge)
    assert page.locator("[data-pair-id]").first.locator(".pred").count() == 2  # a prediction per side


def test_region_pairs_show_the_masked_boxes_and_draw_them_on_the_image(tmp_path):
    from PIL import Image

    import cfpairs
    from cfbuild.builders.toy_regions import build_toy_regions
    build_toy_regions(tmp_path / "reg.h5", n=20, seed=0)
    with cfpairs.open_store(tmp_path / "reg.h5") as store:
        view_ = store["train"]
        o, e = view_.pairs[0]
        mask_o, mask_e = view_.examples["region_mask"][o], view_.examples["region_mask"][e]
        image_row = int(view_.examples["image_row"][o])
        image_id = int(store.image_ids[image_row])
    masked = [i for i in range(len(mask_o)) if mask_o[i] and not mask_e[i]]
    assert masked  # a toy counterfactual masks the region the question names
    (tmp_path / "images").mkdir()
    Image.new("RGB", (64, 48), "white").save(tmp_path / "images" / f"{image_id}.png")
    view(tmp_path / "reg.h5", "--out", tmp_path / "reg.html", "--images", tmp_path / "images")
    text = (tmp_path / "reg.html").read_text()
    first = text[text.index('data-pair-id="0"'):text.index('data-pair-id="1"')]
    assert f"image {image_id}: masked regions {', '.join(map(str, masked))} of {len(mask_o)}" in first
    assert "data:image/png;base64," in first and first.count("<rect ") == len(masked)
    assert 'viewBox="0 0 64 48"' in first


def test_bidirectional_controls_are_shown_never_obeyed():
    before, after = word_diff("\u202eloved it", "\u202ehated it")
    assert "\u202e" not in before + after and 'title="U+202E RIGHT-TO-LEFT OVERRIDE"' in before
    assert "<del>" in before and "loved" in before and "<ins>" in after


@pytest.fixture(scope="module")
def hostile_text(tmp_path_factory):
    """A text store whose texts hold a right-to-left override and a 5,000-character token."""
    import json
    root = tmp_path_factory.mktemp("hostile")
    long = "x" * 5000
    rows = [{"g": 0, "a": "\u202eloved it", "y": "pos"}, {"g": 0, "a": "\u202ehated it", "y": "neg"},
            {"g": 1, "a": f"good {long}", "y": "pos"}, {"g": 1, "a": f"bad {long}", "y": "neg"}]
    (root / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_table({"train": root / "rows.jsonl", "val": root / "rows.jsonl"}, root / "s.h5", text_cols=["a"],
                label_col="y", pair_col="g")
    view(root / "s.h5", "--out", root / "s.html")
    return root / "s.html"


@pytest.mark.e2e
def test_a_long_token_wraps_and_an_override_does_not_reverse_the_text(browser, hostile_text):
    page = opened(browser, hostile_text)
    page.set_viewport_size({"width": 1200, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1200  # was ~100,000 px wide
    side = page.locator('[data-pair-id="0"] .side').first.locator(".field bdi")
    assert "\u202e" not in side.text_content() and "U+202E" in side.text_content()
    order = side.evaluate("""node => {
        const place = word => {
            const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
            for (let t = walker.nextNode(); t; t = walker.nextNode()) {
                const at = t.textContent.indexOf(word);
                if (at >= 0) { const r = document.createRange(); r.setStart(t, at); r.setEnd(t, at + word.length);
                               return r.getBoundingClientRect().left; } }
            return null; };
        return [place('loved'), place(' it')]; }""")
    assert None not in order and order[0] < order[1]  # 'loved' is drawn left of 'it', as written


@pytest.mark.parametrize("change, fragment", [
    (lambda p: p.update(kind="table"), "not a predictions page"),
    (lambda p: p["splits"]["val"]["ensemble"].pop(), "splits.val.ensemble: expected"),
    (lambda p: p["splits"]["val"]["correct"].__setitem__(0, "<script>"), "splits.val.correct: expected"),
    (lambda p: p["splits"]["val"]["members"][0].__setitem__(0, 7), "splits.val.members.0: expected"),
    (lambda p: p["splits"].pop("val"), "holds no split 'val'"),
])
def test_a_predictions_page_from_elsewhere_is_checked(stores, tmp_path, change, fragment):
    """cfbuild view reads the trainer's predictions as data: no trainer import, every list checked."""
    path = eval_predictions(stores / "toy-run", stores / "toy.h5", tmp_path / "p.json")
    page = json.loads(path.read_text())
    change(page)
    path.write_text(json.dumps(page))
    refused("cfbuild", ["view", stores / "toy.h5", "--split", "val", "--predictions", path, "--out",
                        tmp_path / "v.html"], "--predictions", fragment, out=tmp_path / "v.html")


@pytest.mark.e2e  # a fresh interpreter
def test_cfbuild_view_does_not_import_the_trainer(stores, tmp_path):
    import subprocess
    import sys
    from tests.helpers import REPO
    path = eval_predictions(stores / "toy-run", stores / "toy.h5", tmp_path / "p.json")
    code = (f"import sys\nfrom cli.cfbuild import main\ntry:\n    main(['view', {str(stores / 'toy.h5')!r}, '--predictions', "
            f"{str(path)!r}, '--out', {str(tmp_path / 'v.html')!r}])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cftrain', 'torch')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
    assert (tmp_path / "v.html").is_file()
