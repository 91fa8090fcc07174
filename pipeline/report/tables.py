"""Rows the report shows, and the notebooks too: per-code machine kappa beside the human ceiling."""

from __future__ import annotations

from pipeline.comparison import human_ceiling_per_code


def kappa_rows(agreement: dict) -> list[dict]:
    """Per code: machine kappa, its interval (when the agreement stage gives one) and the
    human ceiling (coder vs coder kappa, and its interval when given)."""
    human = human_ceiling_per_code(agreement)
    rows = []
    for code, m in agreement.get("per_code", {}).items():
        low, high = _interval(m, "cohen_kappa")
        h = human.get(code, {})
        h_low, h_high = _interval(h, "cohen_kappa")
        rows.append(
            {
                "code": code,
                "support": m.get("support"),
                "machine": m.get("cohen_kappa"),
                "machine_low": low,
                "machine_high": high,
                "human": h.get("cohen_kappa"),
                "human_low": h_low,
                "human_high": h_high,
                "f1": m.get("f1"),
                "flags": [
                    f"{k.removesuffix('_flag')} {m[k]}" for k in ("kappa_flag", "alpha_flag") if m.get(k)
                ],
            }
        )
    return rows


def _interval(m: dict, key: str) -> tuple[float | None, float | None]:
    """An interval for `key` in any of the shapes an agreement report may give it."""
    for name in (f"{key}_ci95", f"{key}_ci", f"{key}_interval", "ci", "interval"):
        v = m.get(name)
        if isinstance(v, dict):
            v = m[name].get(key, v)
        if isinstance(v, dict) and {"low", "high"} <= set(v):
            return v["low"], v["high"]
        if isinstance(v, list | tuple) and len(v) == 2:
            return v[0], v[1]
    v = m.get("intervals", {}).get(key) if isinstance(m.get("intervals"), dict) else None
    if isinstance(v, dict) and {"low", "high"} <= set(v):
        return v["low"], v["high"]
    if isinstance(v, list | tuple) and len(v) == 2:
        return v[0], v[1]
    return None, None
