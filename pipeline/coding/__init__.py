"""Code stage: a codebook applied deductively to segments (zero-shot from the codebook alone, or
few-shot from human-coded units, cross-fitted over transcripts in the pipeline)."""

from pipeline.coding.cross_fit import cross_fit
from pipeline.coding.few_shot import FewShotCoder, few_shot
from pipeline.coding.stage import run, run_csv, segment_labels
from pipeline.coding.zero_shot import zero_shot

__all__ = ["FewShotCoder", "cross_fit", "few_shot", "run", "run_csv", "segment_labels", "zero_shot"]
