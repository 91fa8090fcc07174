"""Rows the report shows, and the notebooks too: per-code machine kappa beside the human ceiling,
and the figures at each level of a code hierarchy."""

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


_LEVEL_FIGURES = ("cohen_kappa", "krippendorff_alpha", "gwet_ac1", "f1")


def level_rows(agreement: dict) -> list[dict]:
    """Per level of the codebook (1 = top codes; none for a flat codebook): the machine's macro
    kappa, alpha, AC1 and F1 against the reference coder, the human ceiling's macro kappa, and
    the same per code (`codes`: code, support, the four figures, human kappa)."""
    rows = []
    for level, figures in sorted(agreement.get("levels", {}).items(), key=lambda kv: int(kv[0])):
        overall = figures.get("overall", {})
        human = human_ceiling_per_code(figures)
        ceiling = figures.get("human", {}).get(figures.get("human_ceiling_pair") or "", {})
        if not ceiling and "human_ceiling_pair" not in figures:  # reports that name no pair: the first
            ceiling = next(iter(figures.get("human", {}).values()), {})
        rows.append(
            {
                "level": int(level),
                "n_codes": len(figures.get("codes", [])),
                **{k: overall.get(f"macro_{k}") for k in _LEVEL_FIGURES},
                "human": (ceiling.get("overall") or {}).get("macro_cohen_kappa"),
                "codes": [
                    {
                        "code": code,
                        "support": m.get("support"),
                        **{k: m.get(k) for k in _LEVEL_FIGURES},
                        "human": human.get(code, {}).get("cohen_kappa"),
                    }
                    for code, m in figures.get("per_code", {}).items()
                ],
            }
        )
    return rows
