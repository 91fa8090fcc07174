"""De-identification: recall per type, span precision and throughput of this pipeline's
detectors vs Presidio's analyzer (same spaCy model), on the demo study's gold identifiers, on
Presidio's synthetic PII sentences and on generated notes (a stress set; dates without a year
beside scores, doses and fractions). Presidio comes with the `bench` extra
(`pip install -e ".[bench]"`); without it its rows are skipped, saying so."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

from bench import results
from bench.clinical import clinical_notes, dated_notes
from bench.data import ROOT, SHARED
from pipeline.config import DeidParams
from pipeline.deid import deidentify_corpus
from pipeline.deid.detect import load_detector, names_from_speakers
from pipeline.deid.evaluate import score
from pipeline.deid.register import Register, read_register
from pipeline.ingest import ingest_study

DEMO = ROOT / "data" / "demo"
SYNTH = SHARED / "presidio-synth" / "synth_dataset_v2.json"
SPACY = DeidParams().spacy_model
CLINICAL_SIZES = (300, 1000)  # notes of the generated clinical-style stress set
DATED_NOTES = 500  # notes of the generated dates-without-a-year set
DATE_LABELS = frozenset({"DATE", "DATE_TIME"})  # this pipeline's and Presidio's

# Gold labels -> the coarse types reported (so both datasets read alike).
COARSE = {
    "PERSON": "PERSON",
    "FIRST_NAME": "PERSON",
    "LAST_NAME": "PERSON",
    "NAME": "PERSON",
    "LOCATION": "LOCATION",
    "GPE": "LOCATION",
    "ADDRESS": "ADDRESS",
    "STREET_ADDRESS": "ADDRESS",
    "ORGANIZATION": "ORGANIZATION",
    "DATE_TIME": "DATE",
    "DATE": "DATE",
    "AGE": "AGE",
}


def ours(texts: list[str], *, register: Register, speakers: list[str]) -> tuple[list, float]:
    detector = load_detector(
        SPACY,
        entity_labels=DeidParams().entity_labels,
        register=register,
        known_names=names_from_speakers(speakers),
    )
    detector.detect_many(texts[:5])  # load gazetteers before timing
    t0 = time.perf_counter()
    result, leaks, _ = deidentify_corpus(texts, detector=detector, register=register, options=DeidParams())
    seconds = time.perf_counter() - t0
    return [[(s["start"], s["end"], s["label"]) for s in spans] for spans in result.spans], seconds


def presidio(texts: list[str]) -> tuple[list[list[tuple[int, int, str]]], float]:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": SPACY}]}
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    engine.analyze(texts[0], language="en")
    t0 = time.perf_counter()
    found = [[(r.start, r.end, r.entity_type) for r in engine.analyze(t, language="en")] for t in texts]
    return found, time.perf_counter() - t0


def demo_case() -> tuple[list[str], list, dict, Register, list[str], list[tuple[str, int, int]]]:
    turns, _ = ingest_study(DEMO)
    texts = turns["text"].tolist()
    docs = [f"{t}:{n}" for t, n in zip(turns["transcript_id"], turns["turn_id"], strict=True)]
    lengths = dict(zip(docs, (len(t) for t in texts), strict=True))
    gold = []
    speaker_label_gold = 0
    for line in (DEMO / "identifiers.jsonl").read_text().splitlines():
        g = json.loads(line)
        rows = turns[
            (turns["transcript_id"] == g["transcript_id"])
            & (turns["start"] <= g["start"])
            & (turns["end"] >= g["end"])
        ]
        if rows.empty:  # a name in a speaker label: the turn tables never carry it
            speaker_label_gold += 1
            continue
        row = rows.iloc[0]
        gold.append(
            (
                f"{row.transcript_id}:{row.turn_id}",
                g["start"] - row.start,
                g["end"] - row.start,
                COARSE.get(g["label"], g["label"]),
            )
        )
    speakers = turns.loc[turns["role"] == "participant", "speaker"].unique().tolist()
    print(
        f"demo: {len(gold)} gold identifiers in turn text, {speaker_label_gold} in speaker labels "
        "(removed with the label, not scored)",
        file=sys.stderr,
    )
    return texts, gold, lengths, read_register(DEMO / "register.yaml"), speakers, docs


def synth_case():
    data = json.loads(SYNTH.read_text())
    texts = [d["full_text"] for d in data]
    docs = [str(i) for i in range(len(texts))]
    gold = [
        (str(i), s["start_position"], s["end_position"], COARSE.get(s["entity_type"], s["entity_type"]))
        for i, d in enumerate(data)
        for s in d["spans"]
    ]
    return texts, gold, dict(zip(docs, map(len, texts), strict=True)), docs


def evaluate(name: str, texts, gold, lengths, docs, detections, seconds) -> dict:
    detected = [(doc, s, e) for doc, spans in zip(docs, detections, strict=True) for s, e, _ in spans]
    result = score(gold, detected, lengths)
    result["chars_per_second"] = sum(map(len, texts)) / seconds
    return result


def _speedup(results: dict, system: str) -> str:
    """This pipeline's characters/s over Presidio's on the same texts, in the same run."""
    data, _, who = system.partition("/")
    other = results.get(f"{data}/presidio")
    if who == "presidio" or other is None:
        return ""
    return f"{results[system]['chars_per_second'] / other['chars_per_second']:.2f}"


def table(payload: dict) -> str:
    """Recall per identifier type (rows) for each dataset and system (columns)."""
    results = payload["systems"]
    systems = list(results)
    types = sorted({t for r in results.values() for t in r["per_type"]})
    cell = lambda r, t: f"{r['per_type'][t]['recall']:.3f}" if t in r["per_type"] else ""  # noqa: E731
    lines = ["| type | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    lines += [f"| {t} | " + " | ".join(cell(results[s], t) for s in systems) + " |" for t in types]
    lines.append("| **all** | " + " | ".join(f"**{results[s]['recall']:.3f}**" for s in systems) + " |")
    lines.append(
        "| span precision | " + " | ".join(f"{results[s]['span_precision']:.3f}" for s in systems) + " |"
    )
    lines.append(
        "| characters/s | " + " | ".join(f"{results[s]['chars_per_second']:,.0f}" for s in systems) + " |"
    )
    lines.append("| x Presidio's characters/s | " + " | ".join(_speedup(results, s) for s in systems) + " |")
    if any("hard_negatives" in r for r in results.values()):
        lines.append(
            "| hard negatives replaced | " + " | ".join(_negatives(results[s]) for s in systems) + " |"
        )
    lines += [f"\n{name}: skipped, {why}" for name, why in payload.get("skipped", {}).items()]
    top = [payload.get(x) for x in ("command", "machine", "date")]
    sets = payload.get("sets", {})
    made = [f"{name}: `{s['command']}` ({s['machine']}, {s['date']})" for name, s in sets.items()
            if [s[x] for x in ("command", "machine", "date")] != top]  # fmt: skip
    return "\n".join(([*made, ""] if made else []) + lines)


def _negatives(result: dict) -> str:
    """Scores, doses, fractions... that share a date's form and were replaced, of all of them."""
    if "hard_negatives" not in result:
        return ""
    as_date = result.get("hard_negatives_as_date")
    return f"{result['hard_negatives_replaced']} / {result['hard_negatives']} ({as_date} as dates)"


def _demo(found: dict, skipped: dict) -> None:
    texts, gold, lengths, register, speakers, docs = demo_case()
    dets, secs = ours(texts, register=register, speakers=speakers)
    found["demo/pipeline"] = evaluate("demo", texts, gold, lengths, docs, dets, secs)
    dets, secs = ours(texts, register=Register(), speakers=[])
    found["demo/pipeline, no register"] = evaluate("demo", texts, gold, lengths, docs, dets, secs)
    _presidio(found, skipped, "demo", texts, gold, lengths, docs)


def _synth(found: dict, skipped: dict) -> None:
    if not SYNTH.exists():
        skipped["presidio-synth"] = f"{SYNTH} not found"
        return
    texts, gold, lengths, docs = synth_case()
    dets, secs = ours(texts, register=Register(), speakers=[])
    found["presidio-synth/pipeline"] = evaluate("synth", texts, gold, lengths, docs, dets, secs)
    _presidio(found, skipped, "presidio-synth", texts, gold, lengths, docs)


def _clinical(found: dict, skipped: dict) -> None:
    for n in CLINICAL_SIZES:  # the stress set, at growing sizes
        texts, gold = clinical_notes(n)
        docs = [str(i) for i in range(n)]
        lengths = dict(zip(docs, map(len, texts), strict=True))
        dets, secs = ours(texts, register=Register(), speakers=[])
        found[f"clinical {n}/pipeline"] = evaluate("clinical", texts, gold, lengths, docs, dets, secs)
        _presidio(found, skipped, f"clinical {n}", texts, gold, lengths, docs)


def _dates(found: dict, skipped: dict) -> None:
    """Dates without a year beside scores, doses and fractions: recall and how many of those
    hard negatives each system replaced."""
    texts, gold, negatives = dated_notes(DATED_NOTES)
    docs = [str(i) for i in range(len(texts))]
    lengths = dict(zip(docs, map(len, texts), strict=True))
    dets, secs = ours(texts, register=Register(), speakers=[])
    found["dates/pipeline"] = evaluate("dates", texts, gold, lengths, docs, dets, secs)
    by_system = {
        "dates/pipeline": dets,
        "dates/presidio": _presidio(found, skipped, "dates", texts, gold, lengths, docs),
    }
    for system, detections in by_system.items():
        if detections is not None:
            found[system]["hard_negatives"] = len(negatives)
            found[system]["hard_negatives_replaced"] = replaced(negatives, docs, detections)
            found[system]["hard_negatives_as_date"] = replaced(
                negatives, docs, detections, labels=DATE_LABELS
            )


def replaced(
    negatives: list[tuple[str, int, int]],
    docs: list[str],
    detections: list,
    *,
    labels: frozenset | None = None,
) -> int:
    """How many negative spans some detected span (of one of `labels`: any by default) overlaps."""
    spans = dict(zip(docs, detections, strict=True))
    return sum(
        any(s < end and start < e and (labels is None or lab in labels) for s, e, lab in spans[doc])
        for doc, start, end in negatives
    )


def _presidio(found: dict, skipped: dict, name: str, texts, gold, lengths, docs) -> list | None:
    """Presidio's row for a set (its detections), or a line saying why it was skipped (None)."""
    try:
        dets, secs = presidio(texts)
    except ImportError:
        skipped[f"{name}/presidio"] = "presidio-analyzer not installed (the bench extra)"
        return None
    found[f"{name}/presidio"] = evaluate(name, texts, gold, lengths, docs, dets, secs)
    return dets


SETS = {"demo": _demo, "presidio-synth": _synth, "clinical": _clinical, "dates": _dates}


def _set_of(system: str) -> str:
    """The set a row belongs to: `clinical 300/presidio` -> `clinical`."""
    return system.split("/")[0].split(" ")[0]


def run(sets: list[str], *, command: str) -> dict:
    """Run the chosen sets; the others keep their figures (and what made them) from
    bench/results/deid.json."""
    old = results.load("deid") if (results.RESULTS / "deid.json").exists() else {}
    made = {"command": old.get("command"), "machine": old.get("machine"), "date": old.get("date")}
    provenance = {
        s: old.get("sets", {}).get(s, made) for s in SETS if s in map(_set_of, old.get("systems", {}))
    }
    kept = lambda k: _set_of(k) in SETS and _set_of(k) not in sets  # noqa: E731
    found = {k: v for k, v in old.get("systems", {}).items() if kept(k)}
    skipped = {k: v for k, v in old.get("skipped", {}).items() if kept(k)}
    for name in sets:
        SETS[name](found, skipped)
        provenance[name] = {"command": command, "machine": results.machine(), "date": _today()}
    order = list(SETS)
    found = dict(sorted(found.items(), key=lambda kv: order.index(_set_of(kv[0]))))  # stable: set order
    return {
        "systems": found,
        "skipped": skipped,
        "sets": {s: provenance[s] for s in order if s in provenance},
    }


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")
