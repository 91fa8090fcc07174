"""Report stage: the run's results as one self-contained HTML page, plus REFI-QDA exports."""

from pipeline.report.exports import build_exports, export_codebook
from pipeline.report.stage import render_report, run, theme_comparison
from pipeline.report.tables import kappa_rows

__all__ = [
    "build_exports",
    "export_codebook",
    "kappa_rows",
    "render_report",
    "run",
    "theme_comparison",
]
