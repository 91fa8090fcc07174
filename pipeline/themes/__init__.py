"""Discover stage: segments + embeddings -> candidate themes, assignments and theme cards."""

from pipeline.themes.cards import theme_cards
from pipeline.themes.discover import discover_themes
from pipeline.themes.stage import run, run_csv

__all__ = ["discover_themes", "run", "run_csv", "theme_cards"]
