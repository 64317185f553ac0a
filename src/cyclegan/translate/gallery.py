"""An HTML page of input/output image pairs (translate, evaluate and demo write one)."""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path


def write_gallery(
    path: Path,
    pairs: list[tuple[Path, Path]],
    title: str = "",
    columns: tuple[str, ...] = ("input", "output"),
    extra: list[list[Path]] | None = None,
) -> None:
    """An HTML page with one row per image: input | output (| more columns), every image listed."""
    rows = []
    for i, (src, dst) in enumerate(pairs):
        cells = [src, dst] + (list(extra[i]) if extra else [])
        tds = "".join(
            f'<td><img src="{html.escape(urllib.parse.quote(_rel(c, path.parent)))}" loading="lazy"><br>'
            f"<small>{html.escape(Path(c).name)}</small></td>"
            for c in cells
        )
        rows.append(f"<tr>{tds}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title or "cyclegan translations")}</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{text-align:center;vertical-align:top;padding:4px}}
img{{max-width:256px;max-height:256px;image-rendering:pixelated}}</style></head>
<body><h2>{html.escape(title)}</h2><p>{len(pairs)} images</p>
<table><tr>{head}</tr>
{chr(10).join(rows)}
</table></body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)


def _rel(target: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), base.resolve())).as_posix()
