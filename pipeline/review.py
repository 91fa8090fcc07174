"""Theme review under the name the notebooks and README used before `pipeline.notebook` (the
decisions live in `pipeline.report.review`, the notebook helpers in `pipeline.notebook`)."""

from pipeline.notebook import (
    REVIEW_FILE,
    Decision,
    Review,
    RunOutputs,
    SplitPart,
    apply_review,
    closest_themes,
    load_review,
    load_run,
    propose_split,
    save_review,
    theme_quotes,
    themes_table,
)

__all__ = [
    "REVIEW_FILE",
    "Decision",
    "Review",
    "RunOutputs",
    "SplitPart",
    "apply_review",
    "closest_themes",
    "load_review",
    "load_run",
    "propose_split",
    "save_review",
    "theme_quotes",
    "themes_table",
]
