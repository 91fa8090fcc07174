"""Agreement stage: machine codes and candidate themes vs human codings."""

from pipeline.agreement.metrics import binary_agreement, compare_coders, humans_alpha, indicator_matrix
from pipeline.agreement.stage import agreement_report, run, run_csv
from pipeline.agreement.themes_vs_codes import harmonic_purity, partition_agreement

__all__ = [
    "agreement_report",
    "binary_agreement",
    "compare_coders",
    "harmonic_purity",
    "humans_alpha",
    "indicator_matrix",
    "partition_agreement",
    "run",
    "run_csv",
]
