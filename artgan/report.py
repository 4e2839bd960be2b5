"""The run report: one self-contained HTML page and a PNG summary of a run folder.

Reads what the trainer and the pipeline wrote (``metrics.jsonl``, ``evaluations.jsonl``,
``samples/iteration_*.png``, ``pipeline.yaml``, ``*.card.json``) and draws the curves itself (inline
SVG in the page, Pillow for the PNG): no plotting library, no torch, nothing fetched when the page
is opened, so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import ArtganError
from .files import atomic_path, read_jsonl, write_text

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
Series = dict[str, list[tuple[float, float]]]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _records(path: Path, fits: Callable[[dict[str, Any]], bool], what: str,
             warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The records of a JSON-lines file that are what artgan writes there. The others (a foreign
    line, a torn last line) are left out of the report, with one warning for the file: a run ends
    with its report, and a line it did not write must not make it fail after all its work."""
    bad: list[tuple[int, str]] = []
    records = read_jsonl(path, bad=bad, keep=fits)
    if bad:
        number, text = bad[0]
        text = text if len(text) <= 60 else text[:57] + "..."
        warn(f"{path}: {len(bad)} line(s) are not {what}, the first line {number}: {text!r}; left out of the "
             f"report")
    return records


def _read_json(path: Path, warn: Callable[[str], None]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except (OSError, json.JSONDecodeError) as exc:
        warn(f"{path}: not readable JSON ({type(exc).__name__}); left out of the report")
        return None
    if not isinstance(data, dict):
        warn(f"{path}: not a JSON object; left out of the report")
        return None
    return data


def _evaluation_fits(record: dict[str, Any]) -> bool:
    return all(isinstance(record.get(k, {}), dict) for k in ("metrics", "reference", "provenance"))


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr)


def collect(run_dir: str | Path, warn: Callable[[str], None] = _warn) -> dict[str, Any]:
    """Everything the report shows, as plain data. Lines and files that are not what artgan wrote
    there are left out, each file with one ``warn``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ArtganError(f"{run}: not a run folder")
    metrics = _records(run / "metrics.jsonl", lambda r: _number(r.get("iteration")), "artgan training metrics "
                       "(objects with a number 'iteration')", warn)
    evaluations = _records(run / "evaluations.jsonl", _evaluation_fits, "artgan evaluations", warn)
    samples = sorted((run / "samples").glob("iteration_*.png")) if (run / "samples").is_dir() else []
    cards = sorted(p for p in run.rglob("*.card.json"))
    if not (metrics or samples or cards or (run / "pipeline.yaml").exists()):
        raise ArtganError(f"{run}: nothing to report (no metrics.jsonl, samples, model cards or pipeline.yaml)")
    groups: dict[str, Series] = {}
    for rec in metrics:
        iteration = rec["iteration"]
        for key, value in rec.items():
            if key in ("iteration", "time") or not _number(value):
                continue
            groups.setdefault(_group(key), {}).setdefault(key, []).append((float(iteration), float(value)))
    if (run / "evaluation.json").exists():  # from `artgan evaluate gan RUN`: shown first
        evaluation = _read_json(run / "evaluation.json", warn)
        if evaluation is not None and not _evaluation_fits(evaluation):
            warn(f"{run / 'evaluation.json'}: not an artgan evaluation; left out of the report")
        elif evaluation is not None:
            evaluations.append({**evaluation, "source": "artgan evaluate gan"})
    read_cards = [(p, _read_json(p, warn)) for p in cards]
    return {
        "run": run.name, "path": str(run), "groups": groups, "evaluations": evaluations,
        "samples": samples, "cards": [(p, card) for p, card in read_cards if card is not None],
        "pipeline": (run / "pipeline.yaml").read_text(encoding="utf-8", errors="replace")
        if (run / "pipeline.yaml").exists() else "",
    }


def _group(key: str) -> str:
    if key.startswith("eval/"):
        return key  # one chart per metric: their scales differ
    if key.endswith("_loss"):
        return "losses"
    if key == "images_per_s":
        return "throughput (images/s)"
    if key == "sample_diversity":
        return "sample diversity"
    return "discriminator outputs and penalties"


# -- charts -------------------------------------------------------------------------------------

def _ticks(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-12:
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    return lo, hi


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def svg_chart(title: str, series: Series, width: int = 460, height: int = 230) -> str:
    left, right, top, bottom = 56, 10, 26, 34
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = _ticks(min(xs), max(xs))
    y0, y1 = _ticks(min(ys), max(ys))
    pw, ph = width - left - right, height - top - bottom
    sx = lambda x: left + (x - x0) / (x1 - x0) * pw
    sy = lambda y: top + ph - (y - y0) / (y1 - y0) * ph
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for v, y in ((y0, top + ph), (y1, top)):
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_fmt(v)}</text>')
    for v, x in ((x0, left), (x1, left + pw)):
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">{_fmt(v)}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">iteration</text>')
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) == 1:
            parts.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="3" fill="{colour}"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{left + 6}" y="{top + 14 + 12 * i}" font-size="10" fill="{colour}">'
                     f'{html.escape(name)} (last {_fmt(pts[-1][1])})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _png_chart(draw, box: tuple[int, int, int, int], title: str, series: Series) -> None:
    x_min, y_min, x_max, y_max = box
    left, top = x_min + 48, y_min + 18
    right, bottom = x_max - 6, y_max - 18
    draw.rectangle([left, top, right, bottom], outline=(200, 200, 200), fill=(250, 250, 250))
    draw.text((x_min + 4, y_min + 2), title, fill=(0, 0, 0))
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = _ticks(min(xs), max(xs))
    y0, y1 = _ticks(min(ys), max(ys))
    draw.text((x_min + 2, top), _fmt(y1), fill=(60, 60, 60))
    draw.text((x_min + 2, bottom - 10), _fmt(y0), fill=(60, 60, 60))
    draw.text((left, bottom + 3), _fmt(x0), fill=(60, 60, 60))
    draw.text((right - 40, bottom + 3), _fmt(x1), fill=(60, 60, 60))
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = tuple(int(COLOURS[i % len(COLOURS)][j:j + 2], 16) for j in (1, 3, 5))
        xy = [(left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))
              for x, y in pts]
        if len(xy) == 1:
            draw.ellipse([xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2], fill=colour)
        else:
            draw.line(xy, fill=colour, width=2)
        draw.text((left + 4, top + 2 + 11 * i), name, fill=colour)


def write_png_summary(data: dict[str, Any], path: Path) -> Path:
    """Up to four charts (losses, diversity, the main evaluation metrics) beside the last grid."""
    from PIL import Image, ImageDraw

    wanted = ["losses", "sample diversity", "eval/modes", "eval/fd", "eval/kl", "eval/precision"]
    charts = [(g, data["groups"][g]) for g in wanted if g in data["groups"]][:4]
    if not charts:
        charts = list(data["groups"].items())[:4]
    cw, ch = 380, 200
    grid = Image.open(data["samples"][-1]).convert("RGB") if data["samples"] else None
    side = 0 if grid is None else max(ch * 2, 1)
    canvas = Image.new("RGB", (cw * 2 + side + 10, ch * 2 + 24), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 4), f"artgan run {data['run']}", fill=(0, 0, 0))
    for i, (title, series) in enumerate(charts):
        r, c = divmod(i, 2)
        _png_chart(draw, (c * cw, 20 + r * ch, (c + 1) * cw, 20 + (r + 1) * ch), title, series)
    if grid is not None:
        scale = side / max(grid.size)  # small grids are enlarged with visible pixels, big ones shrunk
        grid = grid.resize((max(1, int(grid.width * scale)), max(1, int(grid.height * scale))),
                           Image.NEAREST if scale > 1 else Image.LANCZOS)
        canvas.paste(grid, (cw * 2 + 6, 22))
        draw.text((cw * 2 + 8, 22 + grid.height + 2), data["samples"][-1].stem, fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


# -- the page -----------------------------------------------------------------------------------

def _img(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_show(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _show(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return v if isinstance(v, str) else json.dumps(v)


def render_html(data: dict[str, Any], summary_png: Path | None = None, max_grids: int = 8) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>artgan run {html.escape(data['run'])}</title>",
           "<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}"
           "h2{border-bottom:1px solid #ddd;padding-bottom:4px}.charts{display:flex;flex-wrap:wrap;gap:12px}"
           "table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;"
           "text-align:left;font-size:13px}th{background:#f4f4f4}pre{background:#f6f6f6;padding:8px;"
           "overflow:auto;font-size:12px}.grids{display:flex;flex-wrap:wrap;gap:10px}"
           "figure{margin:0}figcaption{font-size:12px;text-align:center}img.grid{image-rendering:pixelated;"
           "width:240px}</style></head><body>",
           f"<h1>artgan run <code>{html.escape(data['run'])}</code></h1>",
           f"<p>{html.escape(data['path'])}</p>"]
    if summary_png is not None and summary_png.exists():
        out.append(f"<img alt='summary' src='{_img(summary_png)}' style='max-width:100%'>")
    if data["evaluations"]:
        last = data["evaluations"][-1]
        iteration = last.get("iteration", last.get("provenance", {}).get("train_iterations", "?"))
        source = f", {last['source']}" if "source" in last else ""
        out.append(f"<h2>Evaluation (iteration {iteration}{source})</h2>")
        out.append(_table(list(last.get("metrics", {}).items()) + list(last.get("reference", {}).items())))
        out.append("<p>How it was computed (compare figures only when these match):</p>")
        out.append(_table(list(last.get("provenance", {}).items())))
    if data["groups"]:
        out.append("<h2>Curves</h2><div class='charts'>")
        out += [svg_chart(title, series) for title, series in data["groups"].items()]
        out.append("</div>")
    if data["samples"]:
        shown = data["samples"]
        if len(shown) > max_grids:  # evenly spaced, always including the last
            idx = sorted({round(i * (len(shown) - 1) / (max_grids - 1)) for i in range(max_grids)})
            shown = [shown[i] for i in idx]
        out.append("<h2>Samples over time</h2><div class='grids'>")
        out += [f"<figure><img class='grid' alt='{html.escape(p.stem)}' src='{_img(p)}'>"
                f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in shown]
        out.append("</div>")
    if data["pipeline"]:
        out.append(f"<h2>Configuration</h2><pre>{html.escape(data['pipeline'])}</pre>")
    for path, card in data["cards"]:
        out.append(f"<h2>Model card: {html.escape(path.name)}</h2><pre>{html.escape(json.dumps(card, indent=2))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 warn: Callable[[str], None] = _warn) -> Path:
    """Write ``report.html`` (self-contained) and ``report.png`` into the run folder (or ``out``);
    what is left out (a foreign line in ``metrics.jsonl`` ...) is one ``warn`` per file."""
    data = collect(run_dir, warn)
    out = Path(out) if out else Path(run_dir) / "report.html"
    png = out.with_suffix(".png")
    write_png_summary(data, png)
    write_text(out, render_html(data, png))
    return out
