"""How an evaluation is shown: the summary line, markdown tables and the index page."""

from __future__ import annotations

import html
import math
from pathlib import Path


def checkpoint_position(report: dict) -> str:
    """`step S, epoch E`, or `reference generator` for a .pth, which records no training position."""
    if report.get("method") == "reference":
        return "reference generator"
    return f"step {report['step']}, epoch {report['epoch']}"


def summary_line(report: dict) -> str:
    return f"`{report['checkpoint']}` ({checkpoint_position(report)}); " + ", ".join(
        f"{d}: {n} test images" for d, n in report["images"].items()
    )


def content_tables(details: dict) -> str:
    """Markdown: per-class accuracy and top confusions of the content metric, per direction."""
    out = []
    for d, det in details.items():
        c = det.get("content")
        if not c:
            continue
        out += [
            f"\n{d}, content per class (the classifier on translations and on the inputs):\n",
            "| class | images | translated | untranslated |",
            "| --- | ---: | ---: | ---: |",
        ]
        out += [
            f"| {name} | {v['images']} | {v['translated']:.4f} | {v['untranslated']:.4f} |"
            for name, v in c["per_class"].items()
        ]
        if c["top_confusions"]:
            out.append(
                "\nmost frequent confusions on translations: "
                + ", ".join(f"{t['true']} -> {t['predicted']}: {t['count']}" for t in c["top_confusions"][:5])
            )
    return "\n".join(out) + ("\n" if out else "")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def markdown_table(results: dict[str, dict[str, float]]) -> str:
    """| metric | AtoB | BtoA | with one row per value name (in first-seen order)."""
    dirs = list(results)
    names = list(dict.fromkeys(k for d in dirs for k in results[d]))
    lines = ["| metric | " + " | ".join(dirs) + " |", "| --- |" + " --- |" * len(dirs)]
    lines += [f"| {n} | " + " | ".join(_fmt(results[d].get(n)) for d in dirs) + " |" for n in names]
    return "\n".join(lines)


def write_index(path: Path, report: dict, galleries: dict[str, Path]) -> None:
    dirs = list(report["metrics"])
    names = list(dict.fromkeys(k for d in dirs for k in report["metrics"][d]))
    head = "".join(f"<th>{d}</th>" for d in dirs)
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td>"
        + "".join(f"<td>{_fmt(report['metrics'][d].get(n))}</td>" for d in dirs)
        + "</tr>"
        for n in names
    )
    links = "".join(
        f'<li><a href="{d}/index.html">{d}</a>: {report["images"][d]} images, input | translation | reconstruction</li>'
        for d in galleries
    )
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>evaluation</title>
<style>body{{font-family:sans-serif;margin:1em}} td,th{{padding:2px 8px;text-align:right}}</style></head>
<body><h2>Evaluation</h2><p>{html.escape(summary_line(report))}</p>
<table><tr><th>metric</th>{head}</tr>{rows}</table><ul>{links}</ul></body></html>
""")


# ---------------------------------------------------------------------------------- in-memory evaluation
