"""Embed stage: segments -> sentence embeddings (.npy plus a JSON sidecar)."""

from pipeline.embed.stage import run

__all__ = ["run"]
