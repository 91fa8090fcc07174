"""Segment stage: pseudonymised turns -> units of analysis with provenance."""

from pipeline.segment.stage import run, segment_turns, sentence_bounds, unit_bounds

__all__ = ["run", "segment_turns", "sentence_bounds", "unit_bounds"]
