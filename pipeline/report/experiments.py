"""Agreement across `dvc exp` runs: per-code kappa of each experiment beside its params.

Reads what `dvc exp show --json` prints (the workspace, commits and their experiments),
so the agreement notebook can compare parameter settings without re-running anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from pipeline.comparison import human_ceiling_per_code
from pipeline.errors import UserError
from pipeline.layout import Layout

AGREEMENT = Layout(Path("")).metric("agreement").as_posix()  # as `dvc exp show` names it


def load_experiments(repo: Path, *, timeout: float = 120) -> list[dict]:
    """The JSON of `dvc exp show --json` in `repo` (a git + DVC repository)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dvc", "exp", "show", "--json"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"{repo}: could not run `dvc exp show` ({type(e).__name__})") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{repo}: `dvc exp show` failed: {last[:200]}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise UserError(f"{repo}: `dvc exp show --json` did not print JSON") from e


def flatten_params(d: dict, prefix: str = "") -> dict[str, object]:
    """Nested params as one level of dotted keys ("themes.k_rule")."""
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= flatten_params(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def experiment_runs(exp_show: list[dict]) -> list[dict]:
    """One entry per run that has agreement figures: name, rev, flat params, agreement."""
    runs: list[dict] = []

    def visit(entry: dict, parent: str | None) -> None:
        data = entry.get("data") or {}
        params = (data.get("params") or {}).get("params.yaml", {}).get("data") or {}
        agreement = (data.get("metrics") or {}).get(AGREEMENT, {}).get("data")
        rev = entry.get("rev") or data.get("rev") or ""
        name = entry.get("name") or (rev[:7] if rev != "workspace" else "workspace")
        if agreement and agreement.get("per_code"):
            runs.append(
                {
                    "name": name,
                    "rev": rev,
                    "baseline": parent,
                    "params": flatten_params(params),
                    "agreement": agreement,
                }
            )
        for group in entry.get("experiments") or []:
            for child in group.get("revs") or []:
                visit(child, name)

    for entry in exp_show:
        visit(entry, None)
    return runs


def varying_params(runs: list[dict]) -> list[str]:
    """Params whose values differ between runs: the ones worth showing beside the figures."""
    keys = sorted({k for r in runs for k in r["params"]})
    return [k for k in keys if len({json.dumps(r["params"].get(k), sort_keys=True) for r in runs}) > 1]


def kappa_by_experiment(runs: list[dict]) -> pd.DataFrame:
    """Long table: run, code, machine kappa, human ceiling, plus the params that vary."""
    shown = varying_params(runs)
    rows = []
    for r in runs:
        human = human_ceiling_per_code(r["agreement"])
        for code, m in r["agreement"]["per_code"].items():
            rows.append(
                {
                    "run": r["name"],
                    "code": code,
                    "machine_kappa": m.get("cohen_kappa"),
                    "human_kappa": human.get(code, {}).get("cohen_kappa"),
                    "f1": m.get("f1"),
                    **{k: r["params"].get(k) for k in shown},
                }
            )
    return pd.DataFrame(rows)
