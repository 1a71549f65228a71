"""The layout of `cfbuild view`'s page: HTML built from the rows `cfbuild.view` gathers, with its
styles and its filtering script inline (the page opens from disk: no server, no network)."""

from __future__ import annotations

import html
import json
import re
import unicodedata

from cfpairs.outputs import html_signature

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
table.summary{border-collapse:collapse;margin:.5em 0}table.summary td,table.summary th{border:1px solid #ccc;
padding:2px 8px;text-align:left;vertical-align:top}
.controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;z-index:1}
.controls input[type=search]{width:22em;padding:3px}
.pair{border:1px solid #ddd;border-radius:4px;margin:.6em 0;padding:.4em .6em}
.pair[hidden]{display:none}
.head{color:#555;font-size:.9em;margin-bottom:.3em}
.sides{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}
.pair,.field,.remark,.head,td,pre,code{overflow-wrap:anywhere}
bdi{unicode-bidi:isolate}.ctl{color:#a00;border:1px dotted #a00;font-size:.8em;padding:0 2px}
.side .label{font-weight:600}
del{background:#fdd;text-decoration:line-through}ins{background:#dfd;text-decoration:none}
.field{margin:.2em 0}.field b{color:#666;font-weight:500}
.remark{color:#a40;font-size:.9em}.notice{background:#ffd;padding:.4em;border:1px solid #ec0}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:.85em;color:#fff}
.badge.both{background:#282}.badge.original{background:#c80}.badge.edited{background:#37c}.badge.none{background:#c33}
.badge.moved{background:#c33}.badge.steady{background:#282}
.pred{font-size:.9em;color:#333}
details pre{white-space:pre-wrap;font-size:.85em;max-height:30em;overflow:auto}
"""

SCRIPT = """
(function(){
  const rows = Array.from(document.querySelectorAll('.pair'));
  const text = rows.map(r => r.textContent.toLowerCase());
  const q = document.getElementById('search'), kind = document.getElementById('kind'),
        change = document.getElementById('change'), correct = document.getElementById('correct'),
        shown = document.getElementById('shown');
  function apply(){
    const words = q.value.toLowerCase().trim();
    let n = 0;
    rows.forEach((r, i) => {
      const ok = (!words || text[i].includes(words)) && (!kind.value || r.dataset.kind === kind.value)
        && (!change.value || r.dataset.labelChange === change.value)
        && (!correct || !correct.value || r.dataset.correct === correct.value);
      r.hidden = !ok; if (ok) n++;
    });
    shown.textContent = n;
  }
  [q, kind, change, correct].forEach(e => e && e.addEventListener('input', apply));
  apply();
})();
"""


BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape(value) -> str:
    """Text escaped for the page, its bidirectional controls shown, never obeyed: a right-to-left
    override would otherwise reverse what follows it ('loved it' read as 'ti devol')."""
    return BIDI_CONTROLS.sub(_control, html.escape(str(value)))


_e = escape


def _control(match) -> str:
    code = ord(match.group())
    return f'<span class=ctl title="U+{code:04X} {unicodedata.name(match.group(), "")}">U+{code:04X}</span>'


def text_html(value) -> str:
    """A text from the store: escaped (`_e`) and isolated, so right-to-left words stay in place."""
    return f"<bdi>{_e(value)}</bdi>"


def _options(element_id: str, label: str, values: list) -> str:
    items = "".join(f'<option value="{_e(v)}">{_e(text)}</option>' for v, text in values)
    return f'<label>{label} <select id="{element_id}"><option value="">any</option>{items}</select></label>'


def summary_html(info: dict) -> str:
    """The store's summary: splits, build, report, provenance, digest."""
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{s['examples']}</td><td>{s['originals']}</td>"
        f"<td>{_e(', '.join(f'{k} {v}' for k, v in s['pairs'].items()) or '-')}</td>"
        f"<td>{_e(', '.join(f'{k} {v}' for k, v in s['labels'].items()) or '-')}</td></tr>"
        for name, s in info["splits"].items())
    sources = "".join(f"<tr><td>{_e(s.get('file'))}</td><td>{_e(s.get('size'))}</td><td><code>{_e(s.get('sha256'))}"
                      f"</code></td></tr>" for s in info["sources"])
    build = info["build"]
    return (f"<p>Task <b>{_e(info['task'])}</b>: {_e(info['input_kind'])} inputs, {_e(info['label_kind'])} labels "
            f"({info['classes']} classes). Content digest <code>{_e(info['digest'])}</code>.</p>"
            f"<table class=summary id=splits><tr><th>split</th><th>examples</th><th>originals</th><th>pairs by kind"
            f"</th><th>labels</th></tr>{rows}</table>"
            f"<p>Built by <code>{_e(build.get('command'))}</code> (cfpairs {_e(build.get('version'))}).</p>"
            f"<details><summary>Build options</summary><pre>{_e(json.dumps(build.get('parameters', {}), indent=1))}"
            f"</pre></details><details><summary>Build report (defects found, drops)</summary><pre>"
            f"{_e(json.dumps(info['report'], indent=1)) if info['report'] else 'none stored'}</pre></details>"
            f"<details><summary>Provenance: {len(info['sources'])} source file(s)</summary><table class=summary>"
            f"<tr><th>file</th><th>bytes</th><th>sha256</th></tr>{sources}</table></details>")


def side_html(row: dict, side: int) -> str:
    fields = "".join(f'<div class=field><b>{_e(f)}{" (edited)" if f in row["edited"] and len(row["diff"]) > 1 else ""}'
                     f':</b> <bdi>{d[side]}</bdi></div>' for f, d in row["diff"].items())
    pred = ""
    if "predictions" in row:
        members, ensemble = row["predictions"][side], row["predictions"][2 + side]
        pred = (f'<div class=pred>prediction: <b>{_e(ensemble)}</b>'
                + (f' (members: {_e(", ".join(members))})' if len(members) > 1 else "") + "</div>")
    return (f'<div class=side><div class=label>{"original" if side == 0 else "counterfactual"}: '
            f'{text_html(row["labels"][side])} <small>{text_html(row["ids"][side])}</small></div>{fields}{pred}</div>')


def regions_html(regions: dict) -> str:
    text = (f"image {regions['image_id']}: masked regions {', '.join(map(str, regions['masked'])) or 'none'} "
            f"of {regions['all_boxes']} (boxes {'; '.join(' '.join(map(str, b)) for b in regions['boxes'])})")
    if not regions.get("image"):
        return f"<div class=field>{_e(text)}</div>"
    rects = "".join(f'<rect x="{b[0]}" y="{b[1]}" width="{b[2] - b[0]}" height="{b[3] - b[1]}" fill="none" '
                    f'stroke="red" stroke-width="3"/>' for b in regions["boxes"])
    image = regions["image"]
    return (f'<div class=field>{_e(text)}</div><svg style="max-width:480px" '
            f'viewBox="0 0 {image["width"]} {image["height"]}"><image href="{image["uri"]}" x="0" y="0" '
            f'width="{image["width"]}" height="{image["height"]}"/>{rects}</svg>')


def pair_html(row: dict) -> str:
    changed = "changed" if row["labels"][0] != row["labels"][1] else "same"
    correct = f' data-correct="{row["correct"]}"' if row.get("correct") else ""
    badge = f' <span class="badge {row["correct"]}">{row["correct"]}</span>' if row.get("correct") else ""
    remarks = "".join(f"<div class=remark>{text_html(r)}</div>" for r in row["remarks"])
    edited = f", {' and '.join(row['edited'])} edited" if len(row["diff"]) > 1 and row["edited"] else ""
    return (f'<div class=pair data-pair-id="{row["id"]}" data-kind="{_e(row["kind"])}" data-label-change="{changed}"'
            f'{correct}><div class=head>pair {row["id"]} · {_e(row["kind"])}{_e(edited)} · label {changed}'
            f'{badge}</div><div class=sides>{side_html(row, 0)}{side_html(row, 1)}</div>'
            f'{regions_html(row["regions"]) if "regions" in row else ""}{remarks}</div>')


def page(info: dict, split: str, rows: list, total: int, store: str, run: str | None, consistency,
         columns: list | None = None) -> str:
    """The whole page."""
    kinds = sorted({r["kind"] for r in rows})
    with_run = run is not None
    controls = (f'<div class=controls><input type="search" id="search" placeholder="search the texts, ids, labels">'
                f' {_options("kind", "kind", [(k, k) for k in kinds])}'
                f' {_options("change", "label", [("changed", "changed by the edit"), ("same", "same")])}'
                + (f' {_options("correct", "run", [(c, c + (" right" if c != "none" else " right: neither")) for c in ("both", "original", "edited", "none")] + [("moved", "keep pair: prediction moved"), ("steady", "keep pair: prediction steady")])}'
                   if with_run else "")
                + f' <span><span id="shown">{len(rows)}</span> of {len(rows)} pairs shown</span></div>')
    cut = (f'<p class=notice id=limit>Showing the first {len(rows)} of {total} pairs of split {_e(split)} '
           f'(--limit {len(rows)}).</p>' if len(rows) < total else "")
    run_html = ""
    if with_run:
        overall = (consistency or {}).get("all", {})
        value = overall.get("consistency")
        run_html = (f"<h2>Predictions {_e(run)}</h2><p id=consistency>Pair consistency on {_e(split)} (both sides right): "
                    f"<b>{'-' if value is None else f'{value:.1f}%'}</b> of {overall.get('pairs', 0)} pairs"
                    f"{' (' + _e(overall['undefined']) + ')' if overall.get('undefined') else ''}.</p>" +
                    "".join(f"<p class=column>{_e(header)} on {_e(split)}: <b>{'-' if value is None else f'{value:.1f}'}"
                            f"</b> over {n} rows ({better} is better).</p>" for header, value, n, better in columns or []))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{html_signature()}'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(store)}: {_e(split)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{_e(store)} · split {_e(split)}</h1>{summary_html(info)}{run_html}"
            f"<h2>Pairs of {_e(split)}</h2>{cut}{controls}<div id=pairs>{''.join(pair_html(r) for r in rows)}</div>"
            f"<script>{SCRIPT}</script></body></html>\n")
