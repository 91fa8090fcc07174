"""Report stage: a self-contained HTML report of the run (no transcript text but
pseudonymised quotes; counts only for de-identification)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from pipeline import __version__
from pipeline.config import Params
from pipeline.io import read_json, write_text


def render_report(
    *,
    study_name: str,
    params: Params,
    ingest: dict,
    deid: dict,
    segments: dict,
    themes: dict,
    cards: dict,
    agreement: dict,
    generated: str,
) -> str:
    env = Environment(loader=PackageLoader("pipeline.report", "."), autoescape=select_autoescape())
    template = env.get_template("template.html")
    return template.render(
        study_name=study_name,
        params=params.model_dump(),
        ingest=ingest,
        deid=deid,
        segments=segments,
        themes=themes,
        cards=cards,
        agreement=agreement,
        generated=generated,
        version=__version__,
    )


def run(params: Params, *, metrics_dir: Path, cards_path: Path, out: Path) -> None:
    ingest = read_json(metrics_dir / "ingest.json")
    html = render_report(
        study_name=ingest.get("study", ""),
        params=params,
        ingest=ingest,
        deid=read_json(metrics_dir / "deid.json"),
        segments=read_json(metrics_dir / "segment.json"),
        themes=read_json(metrics_dir / "themes.json"),
        cards=read_json(cards_path),
        agreement=read_json(metrics_dir / "agreement.json"),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    write_text(out, html)
