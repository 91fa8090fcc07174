"""README's "More than one machine" recipe with Ray's token authentication, on this machine: a
head and a worker node (`ray start`, one CPU each, the head's token handed to the worker), then
`python -m pipeline run --engine ray` through RAY_ADDRESS on two demo interviews against the same
run with `--engine local`; and a driver without the right token gets one line, not a traceback.
Slow: several minutes on 2 cores (de-identification, twice, is most of it)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FAST, demo_part_study

from pipeline.engine import offline_env

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
# the pseudonym key store (private/deid_key.enc) holds the same table encrypted with a fresh
# nonce on each run (tests/test_engine_ray.py compares its content)
NOT_COMPARED = ("private/",)
# small and fast: embed chunks of 64 texts (two or more, so that both nodes' actors encode)
SETTINGS = (*FAST, "embed.batch_size=8", "agreement.n_boot=0", "report.map=pca")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_env() -> dict[str, str]:
    """This environment without any Ray address or token of the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    return env | {"RAY_USAGE_STATS_ENABLED": "0"} | offline_env()


def _stop(groups: list[int]) -> None:
    """Kill exactly the process groups the test started (each `ray start` ran as the leader of
    a new session: its GCS, raylet, agents and Ray workers are in its group); SIGKILL what is
    left after 15 s (the GCS can take that long to leave on SIGTERM)."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        alive = list(groups)
        for pgid in alive:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.5)
            alive = [g for g in alive if _group_alive(g)]
        if not alive:
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _ray_start(args: list[str], env: dict[str, str], log: Path, groups: list[int]) -> None:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(RAY), "start", *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        groups.append(proc.pid)  # its session's process group, which outlives it
        rc = proc.wait(timeout=180)
    assert rc == 0, f"ray start {args[0]} failed:\n" + log.read_text()[-3000:]


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    """A head and a worker with token authentication: the head reads the token from a file
    (RAY_AUTH_TOKEN_PATH), the worker from RAY_AUTH_TOKEN. Both in a short temporary folder
    (Ray's socket paths must stay under 108 characters), on free ports."""
    root = Path(tempfile.mkdtemp(prefix="rayc", dir="/tmp"))
    token = secrets.token_hex(32)
    token_file = root / "auth_token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    groups: list[int] = []
    port = _free_port()
    try:
        _ray_start(
            [
                "--head",
                f"--port={port}",
                "--num-cpus=1",
                "--include-dashboard=false",
                f"--dashboard-port={_free_port()}",
                f"--dashboard-agent-listen-port={_free_port()}",
                f"--temp-dir={root / 'tmp'}",
            ],
            _base_env() | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)},
            root / "head.log",
            groups,
        )
        _ray_start(
            [
                f"--address=127.0.0.1:{port}",
                "--num-cpus=1",
                f"--dashboard-agent-listen-port={_free_port()}",
            ],
            _base_env() | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token},
            root / "worker.log",
            groups,
        )
        driver = _base_env() | {
            "RAY_ADDRESS": f"127.0.0.1:{port}",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token_file),
        }
        yield {"root": root, "driver": driver, "token": token, "study": demo_part_study(root / "study")}
    finally:
        _stop(groups)
        shutil.rmtree(root, ignore_errors=True)


def _run(cluster: dict, name: str, *, engine: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`run` with an empty embedding cache (every run encodes every text), its outputs then
    moved to root/name. Every run has the same output folder and cache paths: the report lists
    every param and the path of each file it read."""
    root = cluster["root"]
    shutil.rmtree(root / "cache", ignore_errors=True)
    settings = [*SETTINGS, f"deid.key_file={root / 'deid.key'}", f"embed.cache_dir={root / 'cache'}"]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--study", str(cluster["study"])]
        + ["--out", str(root / "out"), "--engine", engine, "--quiet"]
        + [arg for s in settings for arg in ("--set", s)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if (root / "out").exists():
        (root / "out").rename(root / name)
    return done


def _outputs(folder: Path) -> dict[str, bytes]:
    named = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    return {k: p.read_bytes() for k, p in sorted(named.items()) if not k.startswith(NOT_COMPARED)}


def _nodes(env: dict[str, str]) -> list[float]:
    """The CPUs of each live node, as a driver with `env` sees the cluster."""
    probe = (
        "import json, ray; ray.init()\n"
        "print(json.dumps([n['Resources'].get('CPU', 0) for n in ray.nodes() if n['Alive']]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_node_cluster_with_token_writes_the_same_bytes_as_local(cluster):
    # the worker joined with the head's token; with one CPU per node, the embed and code stages'
    # two actors (one CPU each) run one on each node
    assert _nodes(cluster["driver"]) == [1.0, 1.0]
    on_ray = _run(cluster, "out_ray", engine="ray", env=cluster["driver"])
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    local = _run(cluster, "out_local", engine="local", env=_base_env())
    assert local.returncode == 0, local.stderr[-3000:]
    ray_out, local_out = _outputs(cluster["root"] / "out_ray"), _outputs(cluster["root"] / "out_local")
    for name in ("outputs/turns_deid.parquet", "outputs/embeddings.npy", "outputs/codes.parquet"):
        assert name in local_out  # the stages that run on Ray wrote their outputs
    assert list(ray_out) == list(local_out)
    # the report lists every param, `engine` among them: its one row is all that may differ
    row = "<tr><td>engine</td><td>{}</td></tr>"
    report = ray_out["reports/index.html"]
    assert report.count(row.format("ray").encode()) == 1
    ray_out["reports/index.html"] = report.replace(row.format("ray").encode(), row.format("local").encode())
    assert [k for k in local_out if ray_out[k] != local_out[k]] == []
    assert json.loads(local_out["metrics/deid.json"])["replacements"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("case", ["wrong token", "no RAY_AUTH_MODE"])
def test_a_driver_without_the_clusters_token_gets_one_line(cluster, case):
    env = dict(cluster["driver"])
    wrong = secrets.token_hex(32)
    if case == "wrong token":
        env["RAY_AUTH_TOKEN"] = wrong  # read before RAY_AUTH_TOKEN_PATH
    else:
        del env["RAY_AUTH_MODE"]  # with an address given, Ray sends no token at all
    env["RAY_gcs_server_port_wait_time_s"] = "3"  # Ray's retries: 3 s, not 20
    done = _run(cluster, "refused_" + case.replace(" ", "_"), engine="ray", env=env)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: the Ray cluster at RAY_ADDRESS=")
    assert "RAY_AUTH_MODE=token" in lines[0] and "RAY_AUTH_TOKEN" in lines[0]
    assert wrong not in done.stderr and cluster["token"] not in done.stderr
