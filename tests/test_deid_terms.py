"""The linear-time term matcher finds what the alternation regex it replaces found; the leak
gate reads again only what replacement changed."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import DeidParams
from pipeline.deid.detect import Detector, Propagation
from pipeline.deid.gate import changed_sentences, deidentify_corpus
from pipeline.deid.register import Register
from pipeline.deid.terms import TermMatcher


def _regex(terms: list[str], *, ignore_case: bool) -> re.Pattern[str]:
    """The regular expression TermMatcher stands in for."""
    body = "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in sorted(set(terms), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{body})(?:['\u2019]s)?(?!\w)", re.IGNORECASE if ignore_case else 0)


def _same(terms: list[str], text: str, *, ignore_case: bool = False) -> None:
    expected = [(m.start(), m.end()) for m in _regex(terms, ignore_case=ignore_case).finditer(text)]
    got = [(m.start, m.end) for m in TermMatcher(terms, ignore_case=ignore_case).finditer(text)]
    assert got == expected


def test_whole_words_longest_first_with_possessives_and_any_whitespace():
    terms = ["Ann", "Ann Lee", "Lee", "Royal Kennet", "Kennet"]
    text = "Ann Lee's son met Annie and Ann\n  Lee at Royal   Kennet's ward; Lee_x, Lee's, Ann's."
    _same(terms, text)
    found = TermMatcher(terms).finditer(text)
    assert [m.term for m in found][:2] == ["Ann Lee", "Ann Lee"]
    assert text[found[0].start : found[0].end] == "Ann Lee's"


def test_ignore_case_and_a_thousand_terms():
    terms = [f"Name{i}" for i in range(1000)] + ["Dr Who"]
    text = " ".join(f"name{i} NAME{i * 7}x dr  WHO" for i in range(0, 1200, 13))
    _same(terms, text, ignore_case=True)
    assert TermMatcher(terms).finditer(text) == []  # case matters unless ignored


words = st.sampled_from(["Ann", "Lee", "Ann Lee", "ann", "Kennet", "Ke", "K", "é", "Åsa", "x"])
texts = st.lists(
    st.one_of(words, st.sampled_from([" ", "  ", "\n", "'s", "\u2019s", ".", "_", "-", "s", "1"])),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(words, min_size=1, max_size=6), texts, st.booleans())
def test_matches_equal_the_regex_on_random_text(terms, pieces, ignore_case):
    _same(terms, "".join(pieces), ignore_case=ignore_case)


def test_changed_sentences_cover_each_placeholder_sentence():
    text = "First one here. Second has [X]. Third. Fourth [Y] and [Z] too. Last."
    bounds = [(m.start(), m.end()) for m in re.finditer(r"\[\w\]", text)]
    regions = changed_sentences(text, bounds)
    assert [text[a:b].strip() for a, b in regions] == ["Second has [X].", "Fourth [Y] and [Z] too."]


class _CountingNLP:
    """spaCy stand-in that finds nothing and records what it was asked to read."""

    max_length = 1_000_000  # spaCy's default: texts longer are read in windows

    def __init__(self):
        self.read: list[str] = []

    def pipe(self, texts, batch_size=64, n_process=1):
        for text in texts:
            self.read.append(text)
            yield type("Doc", (), {"ents": ()})()


def test_the_gate_reads_again_only_changed_sentences():
    nlp = _CountingNLP()
    detector = Detector(nlp, entity_labels=DeidParams().entity_labels)
    texts = ["Nothing to see here. Nor here.", "Call 01632 960123 today. The weather was fine."]
    result, leaks, _ = deidentify_corpus(texts, detector=detector, register=Register(), options=DeidParams())
    assert not leaks and result.texts[0] == texts[0] and "01632" not in result.texts[1]
    first, again = nlp.read[:2], nlp.read[2:]
    assert first == texts
    assert len(again) == 1 and "weather" not in again[0] and "Nothing" not in again[0]


def test_an_acronym_spacy_found_once_is_replaced_everywhere():
    from pipeline.deid.spans import Span

    # a study's organisation by its initials: found by spaCy in one text, written in another
    texts = ["Two-thirds ICB funding.", "The ICB agreed. Seen by Dr Okafor."]
    found = [[Span(11, 14, "ORG", "spacy", 0.6)], [Span(24, 33, "PERSON", "rules", 0.9)]]
    labels = Propagation.gather(texts, found).labels
    assert labels["ICB"] == "ORG" and labels["Dr Okafor"] == "PERSON"


class _MaskedWordNLP(_CountingNLP):
    """Finds "here" as a person, but only in masked text (a run of blanks): what the leak
    gate's re-read can find that the first pass could not."""

    def pipe(self, texts, batch_size=64, n_process=1):
        for text in texts:
            self.read.append(text)
            ents = []
            if "   " in text and "here" in text:
                at = text.index("here")
                ents = [
                    type(
                        "Ent", (), {"label_": "PERSON", "start_char": at, "end_char": at + 4, "text": "here"}
                    )
                ]
            yield type("Doc", (), {"ents": ents})()


def test_a_second_gate_round_reads_again_only_around_what_the_first_added():
    nlp = _MaskedWordNLP()
    detector = Detector(nlp, entity_labels=DeidParams().entity_labels)
    text = "Call 01632 960123 here. Other sentence now. Email ann@example.org now."
    result, leaks, rounds = deidentify_corpus(
        [text], detector=detector, register=Register(), options=DeidParams()
    )
    assert not leaks and rounds == 1 and "here" not in result.texts[0]
    first, gate, second = nlp.read[:1], nlp.read[1:3], nlp.read[3:]
    assert first == [text] and any("Email" in t for t in gate)  # the first check: both changed sentences
    assert (
        len(second) == 1 and "Call" in second[0] and "Email" not in second[0]
    )  # then only the one it changed
