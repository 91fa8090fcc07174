"""NLP-assisted theme discovery for qualitative interview studies.

Importing the package sets the offline environment (`pipeline.engine.offline_env`: no model
hub, no telemetry) and pins the CPU kernels that torch, MKL and OpenBLAS load with, on x86-64
machines with AVX2 (`pipeline.engine.kernel_env`; a value already set wins). Every process that
computes with the package then gives the same bits: the stages, Ray actors, a notebook, the
tests. A library already loaded keeps its kernels, so import the package before numpy or torch.
"""

import os

from pipeline.engine import kernel_env, offline_env

os.environ.update({k: v for k, v in {**offline_env(), **kernel_env()}.items() if k not in os.environ})

__version__ = "0.1.0"
