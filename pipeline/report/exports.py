"""REFI-QDA exports of a run: the candidate themes as a codebook (.qdc) and the whole study as
a project (.qdpx: pseudonymised transcripts, participant groups as cases, the study's codebook
and the candidate themes, machine and human codings)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from pipeline.codebook import Code, Codebook
from pipeline.errors import UserError
from pipeline.formats import qdpx, refi
from pipeline.schemas import UNASSIGNED

log = logging.getLogger(__name__)


def export_codebook(study_codebook: Codebook | None, cards: dict, used: Iterable[str] = ()) -> Codebook:
    """The study's codebook and the candidate themes, in one codebook for the project export;
    codes the codings `used` that the study's codebook lacks (a study with codings and no
    codebook) are added by name, without a definition."""
    themes = refi.theme_codebook(cards)
    own = study_codebook.codes if study_codebook else ()
    known = {c.code_id for c in own}
    own = (*own, *(Code(code_id=c, name=c, definition="") for c in sorted(set(used) - known)))
    clash = {c.code_id for c in own} & {c.code_id for c in themes.codes}
    if clash:
        raise UserError(f"codebook: code id '{sorted(clash)[0]}' is reserved for candidate themes; rename it")
    return Codebook((*own, *themes.codes))


def build_exports(
    *,
    study_name: str,
    turns: pd.DataFrame,
    segments: pd.DataFrame,
    assignments: pd.DataFrame,
    codes: pd.DataFrame,
    cards: dict,
    codebook: Codebook | None,
    codings: pd.DataFrame,
    participants: pd.DataFrame,
) -> tuple[dict[str, bytes], dict]:
    """candidate_themes.qdc and study.qdpx (file name -> bytes), and counts of what went in."""
    qdc = refi.codebook_qdc(refi.theme_codebook(cards), study=study_name)
    sources = qdpx.pseudonymised_sources(turns)
    themed = assignments[assignments["theme_id"] != UNASSIGNED].assign(
        code=lambda d: "theme_" + d["theme_id"].astype(str)
    )
    machine = pd.concat(
        [
            qdpx.segment_codings(segments, codes, sources, code_column="code"),
            qdpx.segment_codings(segments, themed, sources, code_column="code"),
        ],
        ignore_index=True,
    )
    human, unplaced = qdpx.human_codings_to_sources(codings, turns, sources)
    if unplaced:
        log.warning("%d human coded spans cover no turn text and are not exported", unplaced)
    project = qdpx.project_qdpx(
        study=study_name,
        sources={t: s.text for t, s in sources.items()},
        codebook=export_codebook(codebook, cards, used=[*codings["code"], *codes["code"]]),
        codings=pd.concat([machine, human], ignore_index=True),
        participants=participants,
    )
    counts = {
        "sources": len(sources),
        "machine_codings": int(len(machine)),
        "human_codings": int(len(human)),
        "human_codings_unplaced": unplaced,
        "theme_codes": len(cards["themes"]),
    }
    return {"candidate_themes.qdc": qdc, "study.qdpx": project}, counts
