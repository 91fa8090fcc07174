"""Shared fixtures: a tiny hand-built study and fast params."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pipeline.config import Params
    from pipeline.layout import Layout

# Tests never touch the user's real pseudonym key (~/.config/theme-pipeline/deid.key).
os.environ.setdefault("PIPELINE_DEID_KEY", "ZmFrZS10ZXN0LWtleS1mb3ItdGhlLXRlc3Qtc3VpdGU=")

# The package sets the offline environment and pins the CPU kernels when imported: before any
# test loads numpy or torch, so that embeddings a test caches under the repository's cache/ are
# the bits `dvc repro` computes.
import pipeline  # noqa: E402, F401

TRANSCRIPTS = {
    "T1": (
        "Interviewer: Thanks for joining. Can you tell me how you came to the service?\n"
        "Kirsty: Yeah, so my health visitor Karen noticed I wasn't bonding with Poppy.\n"
        "Kirsty: She rang the team on 07700 900461 and they called me back the same week.\n"
        "Interviewer: Mm-hm.\n"
        "Kirsty: Yeah.\n"
        "Kirsty: The therapist came to our flat in Thatcham, RG39 3AB, and watched us play.\n"
        "Interviewer: How did the services work together?\n"
        "Kirsty: Everyone already knew my story, so I didn't have to repeat it to each person.\n"
        "Kirsty: The health visitor and the therapist visited together and that felt joined up.\n"
    ),
    "T2": (
        "Interviewer: What is your role?\n"
        "Karen: I'm a health visitor and I refer families to the parent infant team.\n"
        "Karen: I ring the duty line for a case consultation before I make a referral.\n"
        "Karen: The consultation helps me think about the baby and hold the family myself.\n"
        "Interviewer: And communication?\n"
        "Karen: Sometimes I send a referral and hear nothing back for weeks, which is hard.\n"
        "Karen: Our record systems don't talk to each other so letters go missing.\n"
    ),
    "T3": (
        "Interviewer: Why was the service commissioned?\n"
        "Rachel: We had a gap in support for infants and the funding came from the pilot.\n"
        "Rachel: The money is only recurrent for two years so the evaluation matters a lot.\n"
        "Rachel: Partners needed training about infant mental health and relationships.\n"
        "Interviewer: Anything else?\n"
        "Rachel: The training raised awareness that babies have mental health too.\n"
    ),
}

PARTICIPANTS = "transcript_id,participant_id,group\nT1,P1,parent\nT2,P2,referrer\nT3,P3,commissioner\n"

CODEBOOK = """\
codes:
  - id: communication
    name: Interagency communication
    definition: Information passing between services about families, referrals and letters.
    examples: ["I heard nothing back after the referral."]
  - id: consultation
    name: Consultative work
    definition: Case consultations offered by the team to other professionals.
  - id: engagement
    name: Parent engagement
    definition: Parents' experience of services working together around them.
  - id: funding
    name: Commissioning and funding
    definition: How the service is funded, commissioned and evaluated.
"""

STUDY_YAML = "name: Tiny study\ndescription: three short interviews\ninterviewer_labels: [Interviewer]\n"


def _codings(transcripts: dict[str, str]) -> str:
    """Code whole lines that contain a keyword, as a human coder might."""
    rules = {
        "communication": ("referral", "letters"),
        "consultation": ("consultation",),
        "engagement": ("story", "joined up"),
        "funding": ("funding", "money", "evaluation"),
    }
    rows = ["transcript_id,coder,code,start,end"]
    for tid, text in transcripts.items():
        offset = 0
        for line in text.split("\n"):
            body = line.split(": ", 1)[-1]
            start = offset + len(line) - len(body)
            for code, words in rules.items():
                if not line.startswith("Interviewer") and any(w in line for w in words):
                    rows.append(f"{tid},A,{code},{start},{offset + len(line)}")
                    if code != "engagement":  # coder B disagrees about engagement
                        rows.append(f"{tid},B,{code},{start},{offset + len(line)}")
            offset += len(line) + 1
    return "\n".join(rows) + "\n"


def make_study(root: Path, transcripts: dict[str, str] | None = None) -> Path:
    transcripts = TRANSCRIPTS if transcripts is None else transcripts
    study = root / "study"
    (study / "transcripts").mkdir(parents=True)
    for tid, text in transcripts.items():
        (study / "transcripts" / f"{tid}.txt").write_text(text, encoding="utf-8")
    (study / "participants.csv").write_text(PARTICIPANTS)
    (study / "codebook.yaml").write_text(CODEBOOK)
    (study / "study.yaml").write_text(STUDY_YAML)
    (study / "codings.csv").write_text(_codings(transcripts))
    return study


DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
# two short demo interviews (a referrer, a commissioner), both coded by coder A: every Ray job of
# the pipeline runs on them
DEMO_PART = ("T12", "T20")


def demo_part_study(study: Path, transcripts: tuple[str, ...] = DEMO_PART) -> Path:
    """Some of the demo's interviews, with their participants, codebook and codings."""
    import shutil

    import pandas as pd

    (study / "transcripts").mkdir(parents=True)
    for name in ("study.yaml", "codebook.yaml"):
        shutil.copy(DEMO / name, study / name)
    for tid in transcripts:
        shutil.copy(DEMO / "transcripts" / f"{tid}.txt", study / "transcripts")
    for name in ("participants.csv", "codings.csv"):
        table = pd.read_csv(DEMO / name, dtype=str, keep_default_na=False)
        table[table["transcript_id"].isin(transcripts)].to_csv(study / name, index=False)
    return study


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return make_study(tmp_path)


# Fast discovery for unit tests: PCA + k-means (no numba compilation).
FAST = [
    "themes.reducer=pca",
    "themes.clusterer=kmeans",
    "themes.n_themes=3",
    "themes.stability_runs=1",
    "themes.keywords=ctfidf",
    "segment.min_words=3",
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Layout, Params]:
    """(study, Layout, params): every stage run once over the tiny study with FAST params, shared
    by the whole session. Tests read it; one that changes the study or the run's files in place
    takes `tiny_run_copy`."""
    from pipeline.config import load_params
    from pipeline.runner import run_all

    root = tmp_path_factory.mktemp("tiny_run")
    study = make_study(root)
    params = load_params(None, FAST)
    return study, run_all(params, study=study, out=root / "out"), params


@pytest.fixture
def tiny_run_copy(tiny_run, tmp_path: Path) -> tuple[Path, Layout, Params]:
    """A private copy of `tiny_run`'s study and outputs (copying is cheap; running is not)."""
    import shutil

    from pipeline.layout import Layout

    study, lay, params = tiny_run
    shutil.copytree(study, tmp_path / "study")
    shutil.copytree(lay.root, tmp_path / "out")
    return tmp_path / "study", Layout(tmp_path / "out"), params
