"""NLP-assisted theme discovery for qualitative interview studies."""

__version__ = "0.1.0"
