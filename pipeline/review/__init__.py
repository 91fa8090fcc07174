"""Review stage: the study's theme review decisions (`theme_review.yaml`), checked and
snapshot for the report (`pipeline.theme_review` holds the decisions and how they apply)."""

from pipeline.review.stage import run

__all__ = ["run"]
