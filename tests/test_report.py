"""The report stage: every section filled, self-contained, rendered by headless Chromium
without console errors; theme review decisions applied without re-clustering."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

from pipeline.codings import read_codings_table
from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.formats.qdpx import read_project_qdpx
from pipeline.formats.refi import read_codebook_qdc
from pipeline.io import read_json, read_table
from pipeline.runner import Layout, run_all, run_report
from pipeline.schemas import ASSIGNMENTS, SEGMENTS
from pipeline.theme_review import (
    Review,
    SplitPart,
    apply_review,
    load_review,
    review_from_snapshot,
    review_snapshot,
    save_review,
)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("summary", "themes", "prevalence", "map", "agreement", "confusion", "coverage", "deid")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / "reports" / "test-artifacts"))


def rerun_report(study: Path, lay: Layout, params, out: Path, exports: Path) -> None:
    run_report(params, study=study, lay=lay, out=out, exports_dir=exports)


class _Sections(HTMLParser):
    """Text, images and tables inside each <section id=...>; every src/href seen."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.depth = 0
        self.text: dict[str, str] = {}
        self.images: dict[str, list[str]] = {}
        self.tables: dict[str, int] = {}
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(a[key])
        if tag == "section":
            self.current, self.depth = a.get("id"), 1
            self.text[self.current] = ""
            self.images[self.current] = []
            self.tables[self.current] = 0
        elif self.current and tag == "img":
            self.images[self.current].append(a.get("src", ""))
        elif self.current and tag == "table":
            self.tables[self.current] += 1
        if tag in ("script", "link"):
            self.links.append(f"<{tag}>")

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None

    def handle_data(self, data):
        if self.current:
            self.text[self.current] += data


def parse(html: str) -> _Sections:
    p = _Sections()
    p.feed(html)
    return p


def test_report_sections_filled_and_self_contained(tiny_run):
    _, lay, _ = tiny_run
    html = lay.report.read_text(encoding="utf-8")
    p = parse(html)
    assert set(SECTIONS) <= set(p.text)
    for sid in SECTIONS:
        assert len(p.text[sid].split()) > 10, f"section {sid} is nearly empty"
    # figures are PNGs inside the page, and decode as PNGs
    for sid in ("prevalence", "map", "agreement", "confusion", "deid"):
        assert p.images[sid], f"section {sid} has no figure"
        for src in p.images[sid]:
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing fetched from anywhere: no scripts, stylesheets or remote URLs
    assert not [u for u in p.links if u.startswith(("http:", "https:", "//", "<script>", "<link>"))]
    # the per-code table lists every leaf code with the human ceiling beside it
    agreement = read_json(lay.metrics / "agreement.json")
    for code in agreement["per_code"]:
        assert code in p.text["agreement"]
    assert "Human ceiling" in p.text["agreement"]
    # how the machine coded, from metrics/coding.json
    coding = read_json(lay.metrics / "coding.json")
    assert coding["method"] == "few_shot_cross_fitted" and coding["context"] == "turn+question"
    coders = ", ".join(coding["train_coders"])
    assert f"Machine coding: few-shot, learned from every coder's codings ({coders})" in p.text["agreement"]
    # who reviewed what, from metrics/agreement.json
    assert "Who reviewed what" in p.text["agreement"] and "Shared segments" in p.text["agreement"]
    # de-identification: counts by type, and no identifier anywhere in the page
    assert "PERSON" in p.text["deid"] and "PHONE" in p.text["deid"]
    for name in ("Kirsty", "Karen", "Poppy", "Rachel", "07700", "RG39", "Thatcham"):
        assert name not in html
    # run summary: study, model and version, a data hash of the segments table
    assert "Tiny study" in p.text["summary"] and "all-MiniLM-L6-v2" in p.text["summary"]
    assert hashlib.sha256(lay.segments.read_bytes()).hexdigest() in html


def _cards_and_assignments(n_per_theme=(4, 3, 2)):
    """Three hand-made themes over segments from two groups."""
    rows, theme = [], []
    k = 0
    for t, n in enumerate(n_per_theme):
        for i in range(n):
            rows.append(
                {
                    "segment_id": f"T{i % 2}:{k}:0",
                    "transcript_id": f"T{i % 2}",
                    "participant_id": f"P{i % 2}",
                    "group": ["parent", "clinician"][i % 2],
                    "turn_id": k,
                    "text": f"theme {t} words about topic{t} number {i}",
                }
            )
            theme.append(t)
            k += 1
    segments = pd.DataFrame(rows)
    assignments = pd.DataFrame(
        {
            "segment_id": segments["segment_id"],
            "theme_id": theme,
            "theme_label": [f"label {t}" for t in theme],
        }
    )
    cards = {
        "segments": len(segments),
        "unassigned": 0,
        "themes": [
            {
                "theme_id": t,
                "label": f"label {t}",
                "keywords": [f"topic{t}", "words", f"kw{t}"],
                "size": n,
                "quotes": [],
                "prevalence": {},
                "coverage": {},
                "stability": 0.9,
                "parent_id": 0 if t < 2 else 1,
                "parent_label": "p0" if t < 2 else "p1",
            }
            for t, n in enumerate(n_per_theme)
        ],
        "parents": [
            {"parent_id": 0, "label": "p0", "theme_ids": [0, 1], "size": 7},
            {"parent_id": 1, "label": "p1", "theme_ids": [2], "size": 2},
        ],
    }
    return segments, assignments, cards


def test_apply_review_merge_rename_drop_split(tmp_path):
    segments, assignments, cards = _cards_and_assignments()
    split_ids = segments["segment_id"][assignments["theme_id"] == 0].tolist()[:2]
    review = (
        Review()
        .merge(1, 2, label="one and two")
        .rename(0, "zero")
        .split(0, [SplitPart("zero part", tuple(split_ids))])
        .drop(3)  # the part split off above got the next free id, 3
    )
    save_review(review, tmp_path / "theme_review.yaml")
    loaded = load_review(tmp_path / "theme_review.yaml")
    assert loaded == review
    new_a, new_c = apply_review(loaded, assignments, cards, segments, n_quotes=2)
    by_id = {c["theme_id"]: c for c in new_c["themes"]}
    assert set(by_id) == {0, 1}
    assert by_id[1]["label"] == "one and two" and by_id[1]["size"] == 5
    assert by_id[1]["review"]["merged_from"] == [1, 2]
    assert by_id[1]["keywords"][:2] == ["topic1", "topic2"]
    assert by_id[0]["label"] == "zero" and by_id[0]["size"] == 2
    assert "stability" not in by_id[1]  # figures about the theme as clustered no longer hold
    assert new_c["unassigned"] == 2 and (new_a["theme_id"] == -1).sum() == 2
    assert new_a.loc[new_a["segment_id"].isin(split_ids), "theme_label"].eq("unassigned").all()
    # prevalence and coverage rebuilt from the segments
    assert by_id[1]["prevalence"]["parent"]["segments"] + by_id[1]["prevalence"]["clinician"]["segments"] == 5
    assert sum(by_id[1]["coverage"].values()) == 5 and len(by_id[1]["quotes"]) == 2
    # parent themes list what is left under them
    assert new_c["parents"] == [{"parent_id": 0, "label": "p0", "theme_ids": [1, 0], "size": 7}]
    assert by_id[1]["parent_id"] == 0
    # the inputs are unchanged
    assert assignments["theme_id"].tolist() == [0] * 4 + [1] * 3 + [2] * 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("decisions:\n  - merge: [1]\n", "at least two"),
        ("decisions:\n  - rename: 1\n", "non-empty 'label'"),
        ("decisions:\n  - explode: 1\n", "exactly one of"),
        ("decisions:\n  - drop: 1\n    colour: red\n", "unknown key 'colour'"),
        ("decisions:\n  - drop: one\n", "theme id"),
        ("decisions: [\n", "not valid YAML"),
    ],
)
def test_review_file_mistakes_name_the_decision(tmp_path, text, message):
    path = tmp_path / "theme_review.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        load_review(path)


def test_review_snapshot_exists_without_a_review_file(tmp_path):
    # dvc repro's report stage depends on the snapshot: a study without theme_review.yaml runs
    assert review_snapshot(tmp_path) == {"exists": False, "decisions": []}
    path = tmp_path / "theme_review.yaml"
    save_review(Review().merge(1, 2, label="Waiting").drop(3), path)
    snapshot = review_snapshot(tmp_path)
    assert snapshot["decisions"] == [{"merge": [1, 2], "label": "Waiting"}, {"drop": 3}]
    data = path.read_bytes()
    assert snapshot["exists"] and snapshot["file"] == [str(path), hashlib.sha256(data).hexdigest(), len(data)]
    assert review_from_snapshot(snapshot, source="s").decisions == load_review(path).decisions
    path.write_text("decisions:\n  - merge: one\n")
    with pytest.raises(UserError, match="theme_review.yaml"):
        review_snapshot(tmp_path)


def test_review_unknown_theme_or_segment_is_an_error():
    segments, assignments, cards = _cards_and_assignments()
    with pytest.raises(UserError, match="theme 9 does not exist"):
        apply_review(Review().drop(9), assignments, cards, segments)
    with pytest.raises(UserError, match="theme 2 does not exist"):
        apply_review(Review().merge(1, 2).drop(2), assignments, cards, segments)
    with pytest.raises(UserError, match="not in theme 1"):
        apply_review(Review().split(1, [SplitPart("x", ("T0:0:0",))]), assignments, cards, segments)


def test_merge_decision_changes_report_without_rediscovery(tiny_run_copy, tmp_path):
    """A review file in the study folder changes the report and exports when only the report
    stage runs again; discovery's outputs are untouched."""
    study, lay, params = tiny_run_copy
    before = read_json(lay.cards)
    discovered = read_table(lay.assignments, ASSIGNMENTS)
    assert len(before["themes"]) >= 3
    a, b = before["themes"][0]["theme_id"], before["themes"][1]["theme_id"]
    size = before["themes"][0]["size"] + before["themes"][1]["size"]
    review_path = study / "theme_review.yaml"
    save_review(Review().merge(a, b, label="Merged by reviewer"), review_path)
    try:
        out, exports = tmp_path / "index.html", tmp_path / "exports"
        rerun_report(study, lay, params, out, exports)
    finally:
        review_path.unlink()
    html = out.read_text(encoding="utf-8")
    p = parse(html)
    assert "Merged by reviewer" in p.text["themes"]
    assert f"Theme {b}:" not in p.text["themes"]
    assert f"{size} segments" in p.text["themes"]
    assert "merged from" in p.text["themes"]
    assert "1 decision(s)" in p.text["summary"]
    themes_qdc = read_codebook_qdc(exports / "candidate_themes.qdc")
    names = {c.code_id: c.name for c in themes_qdc.codes}
    assert names[f"theme_{a}"] == "Merged by reviewer" and f"theme_{b}" not in names
    assert len([c for c in names if c.startswith("theme_")]) == len(before["themes"]) - 1
    # discovery's outputs are as they were
    assert read_json(lay.cards) == before
    assert read_table(lay.assignments, ASSIGNMENTS).equals(discovered)


def test_report_map_says_when_it_shows_a_sample(tiny_run_copy, tmp_path):
    """More segments than `report.map_points`: the map shows a stratified sample, and says so."""
    study, lay, params = tiny_run_copy
    n = len(read_table(lay.segments, SEGMENTS))
    assert "a sample of" not in parse(lay.report.read_text(encoding="utf-8")).text["map"]
    few = params.report.model_copy(update={"map_points": n // 2})  # below the floor of params.yaml
    out = tmp_path / "index.html"
    rerun_report(study, lay, params.model_copy(update={"report": few}), out, tmp_path / "exports")
    text = " ".join(parse(out.read_text(encoding="utf-8")).text["map"].split())
    assert f"It shows a sample of {n // 2} of the {n} segments" in text


def test_report_reads_no_study_codings_and_loads_no_spacy(tiny_run_copy, tmp_path, monkeypatch):
    """The report takes the scrubbed codebook and the offsets-only codings from the earlier
    stages: with the study's own codebook and codings gone, and spaCy unloadable, it still
    shows the human codings and the theme x code comparison."""
    import spacy

    study, lay, params = tiny_run_copy

    def no_spacy(*args, **kwargs):
        raise AssertionError("the report stage loaded a spaCy pipeline")

    monkeypatch.setattr(spacy, "load", no_spacy)
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for name in ("codebook.yaml", "codings.csv"):
        shutil.move(study / name, hidden / name)
    try:
        rerun_report(study, lay, params, tmp_path / "index.html", tmp_path / "exports")
    finally:
        for name in ("codebook.yaml", "codings.csv"):
            shutil.move(hidden / name, study / name)
    _, exported, _ = read_project_qdpx(tmp_path / "exports" / "study.qdpx")
    assert set(read_codings_table(lay.codings)["coder"]) <= set(exported["coder"])  # the human coders
    p = parse((tmp_path / "index.html").read_text(encoding="utf-8"))
    assert "no human codebook or codings" not in p.text["confusion"]
    assert any(c in p.text["confusion"] for c in ("communication", "consultation", "engagement", "funding"))


def test_report_without_human_codings(tmp_path):
    """A study with no codebook or codings still gets every section, saying why it is short."""
    from conftest import make_study

    study = make_study(tmp_path)
    (study / "codings.csv").unlink()
    (study / "codebook.yaml").unlink()
    lay = run_all(load_params(None, FAST), study=study, out=tmp_path / "out")
    p = parse(lay.report.read_text(encoding="utf-8"))
    assert "no human codebook or codings" in p.text["confusion"]
    assert "no codes to cover" in p.text["coverage"]
    assert p.images["map"] and p.images["prevalence"]


def test_review_file_with_no_decisions_is_not_called_absent(tiny_run_copy, tmp_path):
    """`decisions: []` (what the demo ships, and what DVC needs) is a review file that exists
    and lists nothing; only a missing file is 'absent'."""
    study, lay, params = tiny_run_copy
    review_path = study / "theme_review.yaml"
    assert not review_path.exists()
    review_path.write_text("# no decisions yet\ndecisions: []\n", encoding="utf-8")
    try:
        rerun_report(study, lay, params, tmp_path / "empty.html", tmp_path / "exports")
    finally:
        review_path.unlink()
    text = " ".join(parse((tmp_path / "empty.html").read_text(encoding="utf-8")).text["summary"].split())
    assert "exists but lists no decisions" in text and "is absent" not in text
    rerun_report(study, lay, params, tmp_path / "none.html", tmp_path / "exports2")
    text = " ".join(parse((tmp_path / "none.html").read_text(encoding="utf-8")).text["summary"].split())
    assert "is absent" in text and "exists but" not in text


@pytest.mark.parametrize("n_codes", [1, 4, 12])
def test_kappa_chart_legend_sits_clear_of_every_code_row(n_codes):
    import matplotlib.pyplot as plt

    from pipeline.report.figures import kappa_figure

    rows = [
        {"code": f"code_{i}", "machine": 0.9, "machine_low": 0.8, "machine_high": 1.0, "human": 0.95}
        for i in range(n_codes)
    ]
    fig = kappa_figure(rows)
    try:
        fig.canvas.draw()
        ax = fig.axes[0]
        legend = ax.get_legend().get_window_extent()
        axes_box = ax.get_window_extent()
        # above the plotting area, so no code's row (the last one included) lies under it
        assert legend.y0 >= axes_box.y1
        for y in range(n_codes):  # each row's machine and human marks, in pixels
            for x in (0.9, 0.95):
                assert not legend.contains(*ax.transData.transform((x, y)))
    finally:
        plt.close(fig)


def test_map_coordinates_are_seeded():
    from pipeline.report.figures import segment_map_xy

    x = np.random.default_rng(0).normal(size=(60, 16))
    a = segment_map_xy(x, method="tsne", seed=3)
    assert a.shape == (60, 2) and np.allclose(a, segment_map_xy(x, method="tsne", seed=3))
    assert segment_map_xy(x, method="pca", seed=3).shape == (60, 2)


# ---------------------------------------------------------------------------------------
# Headless Chromium over the DevTools protocol


class Browser:
    """A headless Chromium page driven over the DevTools protocol (loopback only)."""

    def __init__(self, profile: Path) -> None:
        import websocket

        self.proc = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-extensions",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1280,1600",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        url = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(method)

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


_CHECK_JS = """
JSON.stringify(Array.from(document.querySelectorAll('section.required')).map(s => ({
  id: s.id,
  height: s.getBoundingClientRect().height,
  words: s.innerText.split(/\\s+/).filter(Boolean).length,
  images: Array.from(s.querySelectorAll('img')).map(i => ({ok: i.complete && i.naturalWidth > 0,
                                                           w: i.naturalWidth}))
})))
"""


def _report_to_check(request) -> Path:
    """The demo's report after `make run` when REPORT_HTML names it, else the tiny run's."""
    named = os.environ.get("REPORT_HTML")
    if named:
        path = Path(named)
        assert path.exists(), f"REPORT_HTML={named} does not exist"
        return path.resolve()
    return request.getfixturevalue("tiny_run")[1].report.resolve()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_chromium_without_errors(request):
    report = _report_to_check(request)
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    browser = Browser(profile)
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable")
        browser.call("Page.navigate", url=report.as_uri())
        browser.wait_for("Page.loadEventFired")
        sections = json.loads(browser.call("Runtime.evaluate", expression=_CHECK_JS)["result"]["value"])
        metrics = browser.call("Page.getLayoutMetrics")["cssContentSize"]
        height = min(int(metrics["height"]), 12000)  # the top of a long report; enough to look at
        shot = browser.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": int(metrics["width"]), "height": height, "scale": 0.6},
        )
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = base64.b64decode(shot["data"])
    (ARTIFACTS / "report.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    errors = [
        e["params"]
        for e in browser.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert not errors, f"console errors: {errors[:3]}"
    requested = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert requested and all(u.startswith(("file:", "data:")) for u in requested), requested[:5]
    assert [s["id"] for s in sections] == list(SECTIONS)
    for s in sections:
        assert s["height"] > 50 and s["words"] > 10, f"section {s['id']} did not render: {s}"
        assert all(i["ok"] for i in s["images"]), f"an image in section {s['id']} did not decode"
    assert all(s["images"] for s in sections if s["id"] in ("prevalence", "map", "agreement", "deid"))


def test_report_quotes_are_pseudonymised_segments(tiny_run):
    """Quotes on the cards are segment texts (pseudonymised), word for word."""
    _, lay, _ = tiny_run
    segments = set(read_table(lay.segments, SEGMENTS)["text"])
    shown = parse(lay.report.read_text(encoding="utf-8")).text["themes"]
    quotes = [q["text"] for card in read_json(lay.cards)["themes"] for q in card["quotes"]]
    assert quotes
    for q in quotes:
        assert q in shown and q in segments


SCHEMAS = REPO.parent / "shared" / "refi-qda"


@pytest.mark.skipif(
    not (SCHEMAS / "Project.xsd").exists(), reason="../shared/refi-qda (QDA-XML schemas) is absent"
)
def test_run_exports_validate_and_point_at_segments(request):
    """The report stage's exports (the demo's after `make run` when EXPORTS_DIR names them)."""
    import zipfile

    from lxml import etree

    from pipeline.formats.qdpx import read_project_cases, read_project_qdpx
    from pipeline.formats.refi import MACHINE_CODER

    named = os.environ.get("EXPORTS_DIR")
    lay = None if named else request.getfixturevalue("tiny_run")[1]
    exports = Path(named) if named else lay.exports
    segments_path = exports.parent / "outputs" / "segments.parquet" if named else lay.segments
    for xml, xsd in (
        ((exports / "candidate_themes.qdc").read_bytes(), "Codebook.xsd"),
        (zipfile.ZipFile(exports / "study.qdpx").read("project.qde"), "Project.xsd"),
    ):
        schema = etree.XMLSchema(etree.parse(str(SCHEMAS / xsd)))
        assert schema.validate(etree.fromstring(xml)), schema.error_log.last_error
    codebook, codings, sources = read_project_qdpx(exports / "study.qdpx")
    segments = read_table(segments_path, SEGMENTS)
    texts = set(segments["text"])
    machine = codings[codings["coder"] == MACHINE_CODER]
    assert len(machine) and {c for c in machine["code"] if c.startswith("theme_")}
    for r in machine.itertuples():
        assert sources[r.transcript_id][r.start : r.end] in texts
    humans = codings[codings["coder"] != MACHINE_CODER]
    assert len(humans) and len(set(humans["coder"])) >= 2
    cases = read_project_cases(exports / "study.qdpx")
    assert set(cases["transcript_id"]) == set(sources) and (cases["group"] != "").all()
    if not named:
        for name in ("Kirsty", "Karen", "Poppy", "Rachel", "07700", "RG39", "Thatcham"):
            assert not any(name in t for t in sources.values())


def test_theme_code_table_and_rows_by_hand():
    from pipeline.codings import primary_codes
    from pipeline.report.compare import code_disagreements, theme_code_table, theme_rows

    assignments = pd.DataFrame({"segment_id": list("abcdef"), "theme_id": [0, 0, 0, 1, 1, -1]})
    gold = pd.DataFrame(
        {
            "id": ["a", "a", "b", "d", "f"],
            "coder": "A",
            "code": ["x", "y", "x", "y", "x"],
            "overlap": [0.9, 0.6, 1.0, 1.0, 1.0],
        }
    )
    primary = primary_codes(gold)
    assert dict(zip(primary["id"], primary["code"], strict=True)) == {"a": "x", "b": "x", "d": "y", "f": "x"}
    table = theme_code_table(assignments, primary, codes=["x", "y", "z"])
    assert (
        table.loc[0].tolist() == [2, 0, 0]
        and table.loc[1].tolist() == [0, 1, 0]
        and table.loc[-1].tolist() == [1, 0, 0]
    )
    rows = {r["theme_id"]: r for r in theme_rows(assignments, gold, table)}
    assert rows[0]["coded_share"] == pytest.approx(2 / 3) and rows[0]["top_code"] == "x"
    assert rows[1]["coded_share"] == 0.5 and rows[1]["top_code_share"] == 1.0
    segments = pd.DataFrame(
        {
            "segment_id": list("abcdef"),
            "group": "g",
            "transcript_id": "T",
            "turn_id": range(6),
            "text": list("ABCDEF"),
        }
    )
    machine = pd.DataFrame({"segment_id": ["a", "c"], "code": ["x", "x"]})
    d = code_disagreements(segments, machine, gold, "x")
    assert d[["segment_id", "disagreement"]].values.tolist() == [
        ["b", "missed"],
        ["f", "missed"],
        ["c", "extra"],
    ]


def test_the_report_reads_the_review_snapshot_not_the_study_file(tiny_run, tmp_path):
    """The report's only view of the review decisions is the review stage's snapshot, its
    declared input: a decision written after the snapshot shows only once review re-runs."""
    from pipeline.stages import layout_paths, run_stage, stage_named

    study, lay, params = tiny_run
    cards = read_json(lay.cards)
    a, b = cards["themes"][0]["theme_id"], cards["themes"][1]["theme_id"]
    report = stage_named("report")
    paths = layout_paths(report, lay, study=study)
    paths |= {"report": tmp_path / "r.html", "exports": tmp_path / "x"}
    review_path = study / "theme_review.yaml"
    save_review(Review().merge(a, b, label="Merged later"), review_path)
    try:
        run_stage(report, params, paths=paths)
        assert "Merged later" not in (tmp_path / "r.html").read_text(encoding="utf-8")
        run_report(params, study=study, lay=lay, out=tmp_path / "r.html", exports_dir=tmp_path / "x")
        assert "Merged later" in (tmp_path / "r.html").read_text(encoding="utf-8")
    finally:
        review_path.unlink()
        run_report(params, study=study, lay=lay)  # the module's run as it was
