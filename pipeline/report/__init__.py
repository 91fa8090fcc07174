"""Report stage: the run's results as one self-contained HTML page, plus REFI-QDA exports."""

from pipeline.report.exports import export_codebook, write_exports
from pipeline.report.stage import file_digest, render_report, run, theme_comparison
from pipeline.report.tables import kappa_rows

__all__ = [
    "export_codebook",
    "file_digest",
    "kappa_rows",
    "render_report",
    "run",
    "theme_comparison",
    "write_exports",
]
