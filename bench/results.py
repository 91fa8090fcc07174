"""One results format for every benchmark: `bench/results/<kind>.json` holds the command, the
params overrides and the figures; the README's table for that kind is generated from it,
between the markers `<!-- bench:<kind> -->` and `<!-- /bench:<kind> -->`."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from datetime import UTC, datetime

from bench.data import ROOT

RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"


def save(kind: str, payload: dict, *, command: list[str]) -> dict:
    """Write the figures with what made them (command, machine, date)."""
    record = {
        "command": "python -m bench " + " ".join(command),
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        **payload,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{kind}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def machine() -> str:
    """The machine line every results file carries."""
    return f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"


def load(kind: str) -> dict:
    return json.loads((RESULTS / f"{kind}.json").read_text())


def update_readme(kind: str, table: Callable[[dict], str]) -> bool:
    """Replace the README's table for `kind` with one made from its results file; False when the
    README has no markers for it."""
    start, end = f"<!-- bench:{kind} -->", f"<!-- /bench:{kind} -->"
    text = README.read_text()
    if start not in text or end not in text:
        return False
    record = load(kind)
    earlier = "".join(f", figures kept from `{c}`" for c in record.get("earlier_commands", []))
    body = f"`{record['command']}`{earlier} ({record['machine']}, {record['date']}):\n\n{table(record)}\n"
    head, rest = text.split(start, 1)
    README.write_text(f"{head}{start}\n{body}{end}{rest.split(end, 1)[1]}")
    return True


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
