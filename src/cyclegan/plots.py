"""Curves of a run for its results pages: each loss (smoothed) and each in-training metric against steps, as PNG.

Read from the run's `log.jsonl`: the loop's loss lines (they carry `it_per_s`) and the in-training evaluation's
`eval/<direction>/<name>` lines. Drawn with matplotlib's Agg backend (no display needed); the pages embed the
PNGs with plain <img> tags, so they need no JavaScript.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

NOT_LOSSES = ("step", "epoch", "lr", "it_per_s", "wall_s")  # the loop's loss lines also carry these


def read_log(path: str | Path) -> list[dict]:
    """The records of a log.jsonl (a torn last line, from a run killed mid-write, is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record:
            records.append(record)
    return records


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def loss_series(records: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """{loss name: (steps, values)} from the loop's loss lines, in the order the names first appear."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for r in records:
        if "it_per_s" not in r:
            continue
        for k, v in r.items():
            if k not in NOT_LOSSES and "/" not in k and _finite(v):
                steps, values = series.setdefault(k, ([], []))
                steps.append(int(r["step"]))
                values.append(float(v))
    return series


def metric_series(records: list[dict]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """{metric name: {direction: (steps, values)}} from the in-training evaluation's `eval/<direction>/<name>`."""
    series: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for r in records:
        for k, v in r.items():
            parts = k.split("/")
            if len(parts) == 3 and parts[0] == "eval" and _finite(v):
                steps, values = series.setdefault(parts[2], {}).setdefault(parts[1], ([], []))
                steps.append(int(r["step"]))
                values.append(float(v))
    return series


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so that it starts at the first value,
    s_t = m_t / (1 - weight^t) with m_t = weight * m_{t-1} + (1 - weight) * v_t."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, m = [], 0.0
    for t, v in enumerate(values, 1):
        m = weight * m + (1 - weight) * v
        out.append(m / (1 - weight**t))
    return out


def default_weight(n: int) -> float:
    """Smoothing that spans about a tenth of the curve: an EMA over ~n/10 points (none for very short curves)."""
    span = n / 10
    return 0.0 if span <= 1 else 1 - 2 / (span + 1)


def _figure(n_panels: int):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a Figure without pyplot: no global state, no display

    cols = min(3, n_panels)
    rows = math.ceil(n_panels / cols)
    fig = Figure(figsize=(4 * cols, 2.8 * rows), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes


def plot_losses(records: list[dict], out: str | Path) -> Path | None:
    """One panel per loss: the logged values (faint) and their smoothing against steps; None when nothing was logged."""
    series = loss_series(records)
    if not series:
        return None
    fig, axes = _figure(len(series))
    for ax, (name, (steps, values)) in zip(axes, series.items()):
        ax.plot(steps, values, color="tab:blue", alpha=0.25, linewidth=1)
        ax.plot(steps, smooth(values, default_weight(len(values))), color="tab:blue", linewidth=1.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_metrics(records: list[dict], out: str | Path) -> Path | None:
    """One panel per in-training metric, one line per direction, against steps; None when the run never evaluated."""
    series = metric_series(records)
    if not series:
        return None
    fig, axes = _figure(len(series))
    for ax, (name, by_direction) in zip(axes, series.items()):
        for direction, (steps, values) in by_direction.items():
            ax.plot(steps, values, marker="o", markersize=3, linewidth=1.5, label=direction)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out)


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def curves_html(run_dir: str | Path, page_dir: str | Path) -> str:
    """Write RUN/plots/losses.png (and metrics.png where the run evaluated during training) and return the HTML
    that shows them on a page in page_dir ("" when the run logged nothing yet)."""
    run_dir, page_dir = Path(run_dir), Path(page_dir)
    records = read_log(run_dir / "log.jsonl")
    parts = []
    for title, plot, name in (
        ("Losses", plot_losses, "losses.png"),
        ("Metrics during training", plot_metrics, "metrics.png"),
    ):
        path = plot(records, run_dir / "plots" / name)
        if path is not None:
            src = Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()
            caption = (
                "faint: as logged; solid: smoothed"
                if name == "losses.png"
                else "evaluated on test images during training"
            )
            parts.append(
                f'<h2>{title}</h2><p>{caption}</p><img src="{html.escape(src)}" alt="{title.lower()}" '
                'style="image-rendering:auto;width:auto;max-width:100%">'
            )
    return "\n".join(parts)


def run_of(checkpoint: str | Path) -> Path | None:
    """The run directory a checkpoint belongs to (RUN, or RUN/checkpoints/X.safetensors), if it has a log."""
    p = Path(checkpoint)
    run = p if p.is_dir() else p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return run if (run / "log.jsonl").is_file() else None


def add_curves(page: str | Path, run_dir: str | Path | None) -> None:
    """Insert the run's curves into an existing HTML page, before </body> (nothing when there is no run log)."""
    page = Path(page)
    fragment = curves_html(run_dir, page.parent) if run_dir is not None else ""
    if fragment:
        text = page.read_text()
        at = text.rfind("</body>")
        page.write_text(text[:at] + fragment + "\n" + text[at:] if at >= 0 else text + fragment)


def write_run_page(run_dir: str | Path) -> Path:
    """RUN/index.html: the position, the last sample grid and the curves of a training run."""
    run_dir = Path(run_dir)
    records = read_log(run_dir / "log.jsonl")
    last = records[-1] if records else {}
    grids = sorted((run_dir / "samples").glob("*.png"))
    grid = (
        f"<h2>Samples</h2><p>{html.escape(grids[-1].name)}: rows A, G_A(A), G_B(G_A(A)) then B, G_B(B), "
        f'G_A(G_B(B)).</p><img src="samples/{html.escape(grids[-1].name)}">'
        if grids
        else ""
    )
    page = run_dir / "index.html"
    page.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(run_dir.name)}</title>
<style>body{{font-family:sans-serif;margin:1em;max-width:72em}} img{{image-rendering:pixelated;max-width:100%}}</style>
</head><body>
<h1>Run {html.escape(run_dir.name)}</h1>
<p>Step {last.get("step", 0)}; model: <code>checkpoints/latest.model.safetensors</code>;
scalars: <code>log.jsonl</code>, <code>tensorboard --logdir {html.escape(str(run_dir))}</code>.</p>
{grid}
</body></html>
""")
    add_curves(page, run_dir)
    return page
