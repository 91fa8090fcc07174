"""Where batch work runs (param `engine`): in this process or its forked copies (`local`), or as Ray Data
`map_batches` over a pool of actors (`ray`), on the Ray cluster `ray start` set up or, when
none is running, on a Ray instance started here for the run.

A job is a list of batches and a `setup`: a picklable callable that returns the batch function.
`setup` runs once per worker, which is where a model is loaded: once in this process, or once
per actor (in its constructor) with Ray. The batch function takes one batch (a list) and returns
a list; the lists come back concatenated in the order of the batches. The caller makes the
batches, so both engines run the batch function on exactly the same batches and give the same
bytes whenever the function gives the same bytes in any process.

With Ray, batches, results and whatever `share` hands out travel through Ray's object store
(pickled: Ray's own wire format for Python objects, in memory for one run; nothing pickled is
ever a file between stages, which exchange parquet, npy and json);
when it fills, objects spill to disk: on an instance started here, under the folder named by
the environment variable `PIPELINE_RAY_SPILL_DIR` (default `private/ray_spill`, git-ignored and
never a DVC output); on a running cluster, where `ray start --object-spilling-directory` put it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline.errors import UserError

SPILL_DIR_ENV = "PIPELINE_RAY_SPILL_DIR"
DEFAULT_SPILL_DIR = "private/ray_spill"


def offline_env() -> dict[str, str]:
    """No model hub, no telemetry, no tokenizer threads: what every process of the package runs
    with (importing `pipeline` sets it; a value already set wins)."""
    return dict.fromkeys(("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DVC_NO_ANALYTICS"), "1") | {
        "TOKENIZERS_PARALLELISM": "false"
    }


def kernel_env() -> dict[str, str]:
    """Environment that fixes which CPU kernels run (read when torch, MKL and OpenBLAS load), so that
    x86-64 machines with AVX2, Intel or AMD, AVX2 or AVX-512, run the same kernel code:
    torch's own kernels at AVX2; MKL (torch's matrix products) on its AVX2 reproducibility branch
    (`MKL_CBWR`: without it, an AMD machine with AVX-512 gave float32 embeddings other bits than
    the machine before it; no slower with it); oneDNN (torch's linear layers) at AVX2 at most
    (without it, an AVX-512 machine's embeddings differed from an AVX2 machine's by 2.5e-7);
    OpenBLAS (numpy, scipy, scikit-learn) on its Haswell kernels (its AVX-512 kernels gave
    few-shot scores other bits); numpy's own loops at AVX2 (its AVX-512 loops, exp and log among
    them, moved the demo's few-shot codes from 2,050 to 2,077); numba (UMAP) compiling for
    Haswell. Callers keep any value the user set; nothing is pinned on other machines."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64") or not _has_avx2():
        return {}
    return {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
        "NUMBA_CPU_NAME": "haswell",
        # numpy 2's AVX-512 dispatch levels (disabling one the CPU lacks is allowed)
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    }


def _has_avx2() -> bool:
    """Whether this CPU has AVX2, from /proc/cpuinfo (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


T = TypeVar("T")
BatchFn = Callable[[list[Any]], list[Any]]
Setup = Callable[[], BatchFn]


def batched(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive batches of `size` items (the last one may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def fork_processes(most: int = 4) -> int:
    """How many forked processes `forked_map` should use here: every core, at most `most`;
    one where this system cannot fork."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, most))


_FORKED: BatchFn | None = None  # the batch function of the running `forked_map`


def _forked_batch(batch: list[Any]) -> list[Any]:
    assert _FORKED is not None
    return _FORKED(batch)


def forked_map(fn: BatchFn, batches: Sequence[list[Any]], processes: int) -> Iterator[list[Any]]:
    """`fn` over `batches` in `processes` forked copies of this process, results in batch
    order, on this machine whatever the engine. Each copy inherits `fn` and whatever model it
    holds, loaded once here: only the batches and their results cross between processes (as
    pickles, within this run). spaCy's own `n_process` sends every parsed Doc back as bytes
    instead, and rebuilding them (a registry lookup per Doc) cost more than the second core
    gave: on 5,000 one-line answers, half the time of the whole de-identification. With one
    process (`processes` <= 1), `fn` runs here, batch by batch, as they are asked for."""
    import multiprocessing

    if processes <= 1:
        yield from (fn(list(batch)) for batch in batches)
        return
    global _FORKED
    _FORKED = fn
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            yield from pool.imap(_forked_batch, batches)
    finally:
        _FORKED = None


def map_batches(
    batches: Sequence[Sequence[Any]],
    setup: Setup,
    *,
    engine: str,
    gpus_per_worker: float = 0.0,
    forked: bool = False,
    progress: bool = False,
) -> list[Any]:
    """`setup()`'s batch function over every batch, its lists concatenated in batch order.

    `gpus_per_worker`: GPUs each Ray actor holds (0: CPU only); a local run uses this process's.
    `forked`: locally, the batches go to forked copies of this process, one per core
    (`forked_map`; the batch function is set up once, here)."""
    if not batches:
        return []
    if engine == "local":
        from tqdm.auto import tqdm

        fn = setup()
        parts = forked_map(fn, batches, min(fork_processes(), len(batches)) if forked else 1)
        out: list[Any] = []
        for part in tqdm(parts, total=len(batches), desc="batches", disable=not progress):
            out += part
        return out
    if engine == "ray":
        return _map_on_ray(batches, setup, gpus=gpus_per_worker, progress=progress)
    raise ValueError(f"unknown engine {engine!r}")  # params are validated in pipeline.config


class Shared(Generic[T]):
    """An object every worker reads (a fitted model, a table): the object itself locally, a
    reference into Ray's object store with Ray (put there once, not once per batch)."""

    def __init__(self, obj: T, *, engine: str) -> None:
        if engine == "ray":
            self._ref, self._obj = connect().put(obj), None
        else:
            self._ref, self._obj = None, obj

    def get(self) -> T:
        if self._ref is None:
            return self._obj  # type: ignore[return-value]
        import ray

        return ray.get(self._ref)


def spill_dir() -> Path:
    """Where a Ray instance started here spills its object store (module docstring)."""
    path = Path(os.environ.get(SPILL_DIR_ENV) or DEFAULT_SPILL_DIR).expanduser().resolve()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(
            f"{SPILL_DIR_ENV}: cannot create the Ray spilling folder {path} ({e.strerror})"
        ) from e
    return path


def connect():
    """The `ray` module, connected: to the running cluster when there is one (`ray start`, or
    RAY_ADDRESS), else to a Ray instance started here, with every CPU (and GPU) of this machine."""
    import ray
    from ray.exceptions import AuthenticationError

    if not ray.is_initialized():
        options = {
            "ignore_reinit_error": True,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "runtime_env": {"env_vars": {k: os.environ.get(k, v) for k, v in kernel_env().items()}},
        }
        try:
            with _stderr_held(drop_if=_becomes_user_error):
                ray.init(address="auto", **options)
        except (ConnectionError, AuthenticationError) as e:
            _raise_for_cluster(e)
            ray.init(include_dashboard=False, object_spilling_directory=str(spill_dir()), **options)
    return ray


_AUTH_HELP = (
    "set RAY_AUTH_MODE=token and give this machine the head's token (`ray get-auth-token` there) "
    'in ~/.ray/auth_token, in a file named by RAY_AUTH_TOKEN_PATH or in RAY_AUTH_TOKEN (README, "More '
    'than one machine")'
)


def _cluster_refused(error: BaseException) -> bool:
    """Whether Ray failed for want of the cluster's token: Ray 2.60 says so directly when token
    mode has no token, and only inside the cause of its ConnectionError when the cluster rejects
    the token given (or none, without RAY_AUTH_MODE=token)."""
    from ray.exceptions import AuthenticationError

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, AuthenticationError) or "InvalidAuthToken" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _becomes_user_error(error: BaseException) -> bool:
    """Whether `_raise_for_cluster` turns this failure of `ray.init` into a UserError."""
    from ray.exceptions import AuthenticationError

    if not isinstance(error, (ConnectionError, AuthenticationError)):
        return False
    return bool(os.environ.get("RAY_ADDRESS")) or _cluster_refused(error)


def _raise_for_cluster(error: BaseException) -> None:
    """A UserError when the cluster named (RAY_ADDRESS, or `ray start` here) cannot be used;
    returns when there is none, to start one here. With RAY_ADDRESS set, a Ray instance
    started here would connect to that address again, so there is no falling back."""
    address = os.environ.get("RAY_ADDRESS")
    where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "the running Ray cluster"
    if _cluster_refused(error):
        mode = os.environ.get("RAY_AUTH_MODE")
        raise UserError(
            f"{where} refused this machine's authentication token (RAY_AUTH_MODE="
            f"{mode or 'unset'}, token {_token_source()}): {_AUTH_HELP}"
        ) from None
    if address:
        raise UserError(f"{where}: cannot connect ({error}); is `ray start` running there?") from None


def _token_source() -> str:
    """Where Ray would read this process's token from (Ray 2.60's order), never the token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "from RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return "from RAY_AUTH_TOKEN_PATH"
    if (Path.home() / ".ray" / "auth_token").is_file():
        return "from ~/.ray/auth_token"
    return "none found"


@contextlib.contextmanager
def _stderr_held(*, drop_if: Callable[[BaseException], bool]) -> Iterator[None]:
    """Ray's C++ client writes a warning to file descriptor 2 for each failed attempt to reach
    a cluster (dozens when it refuses the token), past Python's logging: hold them in a file
    and write them back, unless the block fails with an error `drop_if` accepts (one that
    becomes a one-line UserError)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold
        saved = -1
    if saved < 0:
        yield
        return
    keep = True
    with tempfile.TemporaryFile() as buffer:
        os.dup2(buffer.fileno(), 2)
        try:
            yield
        except BaseException as e:
            keep = not drop_if(e)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buffer.seek(0)
            data = buffer.read() if keep else b""
            while data:
                data = data[os.write(2, data) :]


class _Worker:
    """One Ray actor: runs `setup` once, in its constructor; then each row (one pickled batch).
    A `UserError` (bad input a worker finds: a model it cannot load) comes back as data, so
    that the stage reports it in one line as it does locally."""

    def __init__(self, setup: Setup) -> None:
        self.fn: BatchFn | None = None
        self.error = ""
        try:
            self.fn = setup()
        except UserError as e:
            self.error = str(e)

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        results, errors = [], []
        for b in rows["batch"]:
            out, error = b"", self.error
            if not error:
                try:
                    out = pickle.dumps(self.fn(pickle.loads(b)), protocol=pickle.HIGHEST_PROTOCOL)
                except UserError as e:
                    error = str(e)
            results.append(out)
            errors.append(error)
        return {"index": list(rows["index"]), "result": results, "error": errors}


def _map_on_ray(batches: Sequence[Sequence[Any]], setup: Setup, *, gpus: float, progress: bool) -> list[Any]:
    """One row per batch (pickled: any Python objects), `batch_size=1` row per call: Ray Data
    never re-cuts the caller's batches. As many actors as the cluster has CPUs (GPUs when
    `gpus`), at most one per batch; results put back in batch order."""
    ray = connect()
    from ray import data

    context = data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.enable_auto_log_stats = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.INFO if progress else logging.ERROR)
    resource, per_worker = ("GPU", gpus) if gpus else ("CPU", 1.0)
    available = ray.cluster_resources().get(resource, 0)
    if available < per_worker:
        raise UserError(
            f"params engine: ray: this job's workers need {per_worker:g} {resource} each "
            f"(embed.device: cuda needs GPUs) and the Ray cluster has {available:g}"
        )
    workers = int(min(len(batches), available // per_worker))
    rows = [
        {"index": i, "batch": pickle.dumps(list(b), protocol=pickle.HIGHEST_PROTOCOL)}
        for i, b in enumerate(batches)
    ]
    with warnings.catch_warnings():
        # max_restarts=0: a failed actor fails the job with Ray's error, not retried (Ray's own
        # advice; with restarts every actor logs an error about its arguments). Ray 2.60 warns
        # that extra remote args go in Ray 2.64.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        results = (
            data.from_items(rows, override_num_blocks=len(rows))
            .map_batches(
                _Worker,
                fn_constructor_args=(setup,),
                batch_size=1,
                batch_format="numpy",
                compute=data.ActorPoolStrategy(size=workers),
                num_cpus=1,
                num_gpus=gpus or None,
                max_restarts=0,
            )
            .take_all()
        )
    results.sort(key=lambda r: int(r["index"]))
    failed = [str(r["error"]) for r in results if r["error"]]
    if failed:
        raise UserError(f"{failed[0]} (on a Ray worker)")
    out: list[Any] = []
    for row in results:
        out += pickle.loads(row["result"])
    return out
