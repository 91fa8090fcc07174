"""A killed run leaves no partial output: the target is the old complete file (or absent), and
the temporary file a SIGKILL leaves behind is removed by the next write of the same target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.io import atomic_path, remove_stale_temps, write_text

REPO = Path(__file__).resolve().parents[1]

# Writes a big file through the pipeline's atomic writer, slowly, saying when it has started.
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from pipeline.io import atomic_path
    target = Path(sys.argv[1])
    with atomic_path(target) as tmp:
        with open(tmp, "w") as f:
            for i in range(100_000):
                f.write("x" * 10_000 + "\\n")
                f.flush()
                if i == 10:
                    print("writing", flush=True)
                time.sleep(0.001)
    """
)


def _temps(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(f".{target.name}."))


def _kill_mid_write(target: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("old", [None, "old complete contents\n"])
def test_sigkill_mid_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path, old):
    target = tmp_path / "turns.csv"
    if old is not None:
        target.write_text(old)
    _kill_mid_write(target)
    assert (target.read_text() if target.exists() else None) == old  # never a partial file
    assert len(_temps(target)) == 1  # what SIGKILL leaves behind
    write_text(target, "new\n")  # the next run
    assert target.read_text() == "new\n"
    assert _temps(target) == []


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    target = tmp_path / "out.json"
    with atomic_path(target) as tmp:
        tmp.write_text("{}")
        (tmp_path / f".{target.name}.999999999-abcdefgh.tmp").write_text("dead writer")
        (tmp_path / f".{target.name}x.1-abcdefgh.tmp").write_text("another target")
        assert remove_stale_temps(target) == 1  # the dead one; ours (this process) stays
        assert tmp.exists()
    assert target.read_text() == "{}"
    assert _temps(target) == []
    assert (tmp_path / f".{target.name}x.1-abcdefgh.tmp").exists()
