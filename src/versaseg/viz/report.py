"""A simple HTML report: headed sections of text paragraphs, images (by relative path) and tables.

Section items:

* ``str``: a paragraph (HTML-escaped; blank lines start new paragraphs);
* ``Path``: an image (``.png``, ``.jpg``, ``.jpeg``, ``.gif``, ``.svg``, ``.webp``) shown with its file name as caption,
  any other file as a link; the page refers to it by a path relative to the HTML file, so keep them together;
* ``list[dict]``: a table with one row per dict, columns in first-seen key order;
* ``dict`` of dicts (e.g. class -> {metric: value}): a table with one row per key, columns from the inner keys;
* ``dict`` of scalars: a two-column name / value table.

Floats are shown with 4 significant digits. The page has inline CSS and no scripts or external resources.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from versaseg.io.atomic import write_text_atomic

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .3em .7em; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
""".strip()


def write_html_report(
    out_html: str | Path,
    title: str,
    sections: list[tuple[str, list[str | Path | dict | list]]],
) -> Path:
    """Write an HTML page with ``title`` and ``sections`` = ``[(heading, [item, ...]), ...]`` atomically.

    Items are described in the module docstring. Image paths that are absolute, or relative to the current folder
    and existing there, are rewritten relative to the HTML file's folder; other relative paths are kept as given
    (taken as relative to the HTML file). Returns ``out_html``.
    """
    out_html = Path(out_html)
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, items in sections:
        body.append(f'<section>\n<h2>{html.escape(str(heading))}</h2>')
        for item in items:
            body.append(_render(item, out_html.parent))
        body.append("</section>")
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n"
        f"<style>\n{_CSS}\n</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
    write_text_atomic(out_html, page)
    return out_html


def _render(item, folder: Path) -> str:
    if isinstance(item, Path):
        return _render_path(item, folder)
    if isinstance(item, str):
        paragraphs = [p.strip() for p in item.split("\n\n") if p.strip()]
        return "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    if isinstance(item, Mapping):
        if item and all(isinstance(v, Mapping) for v in item.values()):
            columns = _columns(item.values())
            rows = [[key, *[row.get(c, "") for c in columns]] for key, row in item.items()]
            return _table(["", *columns], rows)
        return _table(["name", "value"], [[key, value] for key, value in item.items()])
    if isinstance(item, (list, tuple)) and all(isinstance(row, Mapping) for row in item):
        columns = _columns(item)
        return _table(columns, [[row.get(c, "") for c in columns] for row in item])
    if isinstance(item, (int, float)):
        return f"<p>{html.escape(_format(item))}</p>"
    raise TypeError(f"cannot render report item of type {type(item).__name__}: use str, Path, dict or list of dicts")


def _render_path(path: Path, folder: Path) -> str:
    href = _relative(path, folder)
    url = quote(href.as_posix())
    name = html.escape(path.name)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return (f'<figure><a href="{url}"><img src="{url}" alt="{name}"></a>'
                f"<figcaption>{name}</figcaption></figure>")
    return f'<p><a href="{url}">{name}</a></p>'


def _relative(path: Path, folder: Path) -> Path:
    if path.is_absolute() or (not (folder / path).exists() and path.exists()):
        return Path(os.path.relpath(path.resolve(), folder.resolve()))
    return path


def _columns(rows) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    return columns


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0
                                    and value.dtype.kind == "f"):
        value = float(value)
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str) or value.strip() != ""


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr></thead>",
             "<tbody>"]
    for row in rows:
        cells = []
        for value in row:
            css = ' class="num"' if _is_number(value) else ""
            cells.append(f"<td{css}>{html.escape(_format(value))}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)
