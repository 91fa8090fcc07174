"""Readers and writers of the file formats researchers' tools use: plain-text transcripts,
REFI-QDA codebooks and projects, Taguette databases and exports, codebook and codings files."""
