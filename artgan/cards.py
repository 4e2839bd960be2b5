"""Model cards: ``NAME.card.json`` holds the facts, ``NAME.card.md`` is rendered from it (no torch).

Export writes the first card beside ``NAME.onnx`` (the model's metadata, the check against
PyTorch, fp16 safety); everything after adds one section with :func:`update_card`, which
rewrites both files atomically:

    from artgan.cards import update_card
    update_card("exports/superres/x2-psnr.onnx", "training", {"iterations": 7300, ...})
    update_card(path, "evaluation/Set5 x2", result)        # a results JSON of `artgan evaluate`

Sections the Markdown knows how to show (any other is shown as a list of its fields):

- ``summary``: ``{"title": str, "lines": [markdown lines]}``, what the model is and how to use it
  (written by the task plugin);
- the export's own keys (``file``, ``bytes``, ``metadata``, ``verification``, ``fp16_check``);
- ``training``: facts as fields (``lines``, if given, are shown instead); ``command``: how to
  reproduce the model;
- ``evaluation``: ``{title: result}``, each a results JSON of ``artgan evaluate`` (one table each);
- ``real_inputs``: the export check on caller-given real inputs
  (:func:`artgan.export.verify_on_real_inputs`).

Any other section is shown under its own heading: its ``lines`` if it has them, else its fields
(``speed``, ``build``: :mod:`artgan.build_card`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ArtganError
from .files import write_text

JSON_SUFFIX, MD_SUFFIX = ".card.json", ".card.md"
_SHOWN = ("summary", "file", "bytes", "metadata", "verification", "fp16_check", "int8_layers", "training",
          "command", "evaluation", "real_inputs")


def card_paths(path: str | Path) -> tuple[Path, Path]:
    """``(NAME.card.json, NAME.card.md)`` for a model (``NAME.onnx``), either card file, or ``NAME``."""
    path = Path(path)
    name = path.name
    for suffix in (JSON_SUFFIX, MD_SUFFIX, ".onnx"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + JSON_SUFFIX), path.with_name(name + MD_SUFFIX)


def read_card(path: str | Path) -> dict[str, Any]:
    """The card of a model (any path :func:`card_paths` accepts)."""
    json_path, _ = card_paths(path)
    try:
        card = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtganError(f"{json_path}: no model card; export the model first (artgan export)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtganError(f"{json_path}: not a readable model card ({exc}); export the model again") from None
    if not isinstance(card, dict):
        raise ArtganError(f"{json_path}: not a model card (a JSON object); export the model again")
    return card


def write_card(path: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write ``card`` as ``NAME.card.json`` and render ``NAME.card.md``, each atomically."""
    for file, text in card_texts(path, card):
        write_text(file, text)
    return card


def card_texts(path: str | Path, card: dict[str, Any]) -> list[tuple[Path, str]]:
    """``[(NAME.card.json, its text), (NAME.card.md, its text)]``: what :func:`write_card` writes,
    for a writer that renames them together with the model (:func:`artgan.files.atomic_paths`)."""
    json_path, md_path = card_paths(path)
    return [(json_path, json.dumps(card, indent=2, sort_keys=False, default=str) + "\n"),
            (md_path, render_markdown(card, name=json_path.name[: -len(JSON_SUFFIX)]))]


def update_card(path: str | Path, section: str, data: Any) -> dict[str, Any]:
    """Set ``section`` of a model's card to ``data`` and re-render its Markdown; return the card.

    ``section`` may name a field inside a section with a slash (``"evaluation/Set5 x2"``), so
    each evaluation keeps its own entry. ``data=None`` removes the section.
    """
    card = read_card(path)
    *parents, key = section.split("/")
    node = card
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ArtganError(f"model card section {p!r} is not a mapping; cannot set {section!r}")
    if data is None:
        node.pop(key, None)
    else:
        node[key] = data
    return write_card(path, card)


# -- the Markdown ----------------------------------------------------------------------------

def render_markdown(card: dict[str, Any], name: str = "") -> str:
    name = name or str(card.get("file", "model")).removesuffix(".onnx")
    summary = card.get("summary") or {}
    lines = [f"# {summary.get('title') or card.get('file') or name}", ""]
    if summary.get("lines"):
        lines += [*summary["lines"], ""]
    if "metadata" in card:
        lines += _model_facts(card) + [""]
    if card.get("training"):
        t = card["training"]
        lines += ["## Data and training", "", *(t.get("lines") or _fields(t)), ""]
    if card.get("command"):
        lines += ["## Reproduce", "", "```", card["command"], "```", ""]
    for title, result in (card.get("evaluation") or {}).items():
        lines += [f"## Evaluation: {title}", ""] + _evaluation(result) + [""]
    lines += _verification(card)
    for key, value in card.items():
        if key not in _SHOWN and value not in (None, {}, []):
            shown = (value.get("lines") or _fields(value)) if isinstance(value, dict) else [str(value)]
            lines += [f"## {key.replace('_', ' ').capitalize()}", "", *shown, ""]
    if "metadata" in card:
        lines += ["How to run it without PyTorch: see exports/README.md in the artgan repository.", ""]
    return "\n".join(lines)


def _fields(data: dict[str, Any]) -> list[str]:
    return [f"- {k}: {v if isinstance(v, str) else json.dumps(v)}" for k, v in data.items() if k != "lines"]


def _model_facts(card: dict[str, Any]) -> list[str]:
    """What the export recorded: the model's interface, precision and size."""
    md, f = card["metadata"], card.get("fp16_check") or {}
    inputs = ", ".join(f"`{k}` {md.get('input_dtypes', {}).get(k, '?')}" for k in md.get("inputs", []))
    lines = [f"An artgan {md.get('architecture', '')} model, task `{md.get('task')}`, exported from run "
             f"`{md.get('run', '?')}` (iteration {md.get('train_iterations', '?')}) by artgan {md.get('version')}.", "",
             "| | |", "|---|---|",
             f"| precision | {md.get('precision')} (inputs and outputs float32) |",
             f"| inputs | {inputs} |",
             f"| output | `{(md.get('outputs') or ['?'])[0]}` float32 NCHW in {md.get('value_range')} |"]
    if md.get("task") == "generate":
        lines.append(f"| latent | {md.get('latent_dim')} values, standard normal |")
        lines.append(f"| image | {md.get('image_size')} px, {md.get('channels')} channel(s), {md.get('color_order', '?')} |")
        if md.get("class_names"):
            lines.append(f"| classes | {md['num_classes']}: {', '.join(md['class_names'])} (input `label` = index) |")
    else:
        lines.append(f"| scale / size multiple | x{md.get('scale')} / {md.get('size_multiple')} px |")
    lines.append(f"| fp16 safe | {f.get('safe')} ({f.get('checked_on') or f.get('problem')}) |")
    lines.append(f"| opset / size | {md.get('opset')} / {card.get('bytes', 0) / 1e6:.2f} MB |")
    if md.get("calibration"):
        lines.append(f"| int8 calibration | {md['calibration']} |")
    return lines


def _verification(card: dict[str, Any]) -> list[str]:
    v, real = card.get("verification"), card.get("real_inputs")
    if v is None and not real:
        return []
    lines = ["## Verification against PyTorch", ""]
    if v is not None and v.get("verified"):
        psnr_text = "identical outputs" if v.get("psnr_db") is None else f"PSNR {v['psnr_db']:.1f} dB"
        lines.append(f"- on {v['inputs']}: largest |onnxruntime - PyTorch| = {v['max_abs_diff']:.3g}, "
                     f"{psnr_text} (limits: {v.get('tolerance')}, {v.get('min_psnr')} dB)")
    elif v is not None:
        lines.append("- not verified on random inputs (exported with --no-verify)")
    if real:
        psnr_text = ("identical outputs" if real.get("min_psnr_db") is None
                     else f"PSNR min {real['min_psnr_db']:.1f} dB, mean {real['mean_psnr_db']:.1f} dB")
        lines.append(f"- on real inputs ({real['inputs']}): largest |onnxruntime - PyTorch| = "
                     f"{real['max_abs_diff']:.3g}, {psnr_text}")
    return lines + [""]


def _evaluation(result: dict[str, Any]) -> list[str]:
    header, rows = table_rows(result)
    lines = [result.get("protocol", ""), ""] if result.get("protocol") else []
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if result.get("summary"):  # headline figures that are no column (artgan.evaluation)
        lines += ["", *(f"- {line}" for line in result["summary"])]
    if result.get("note"):
        lines += ["", result["note"]]
    if result.get("command"):
        lines += ["", f"Reproduce: `{result['command']}`"]
    return lines


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a results JSON's table: each method's mean of each metric and,
    with a baseline, the gain in the first metric over it."""
    metrics = result.get("metrics") or {k: {} for k, v in next(iter(result["methods"].values())).items()
                                        if isinstance(v, (int, float))}
    baseline = result.get("baseline")
    first = next(iter(metrics))
    base = result["methods"].get(baseline, {}).get(first) if baseline else None
    header = ["method", *(m.get("label") or k for k, m in metrics.items())] + ([f"vs {baseline}"] if base is not None else [])
    rows = []
    for name, r in result["methods"].items():
        row = [name] + [format(r[k], m.get("format", ".4f")) if k in r else "-" for k, m in metrics.items()]
        if base is not None:
            unit = metrics[first].get("unit", "")
            row.append(f"{r[first] - base:+{metrics[first].get('format', '.4f')}}{' ' + unit if unit else ''}")
        rows.append(row)
    return header, rows
