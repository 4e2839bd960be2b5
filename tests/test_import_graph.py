"""The core is layered: no import cycle among artgan's modules and no import from a lower layer up to
a higher one, counting imports inside functions (docs/architecture.md, "Layers"). The graph is drawn from the sources with ``ast``: ``import
artgan.x``, ``from artgan.x import y``, ``from . import x``, ``from .x import y``, at any depth."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "artgan"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the artgan modules it imports (a package's ``__init__`` counts as the package)."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[:len(base) - node.level + (1 if is_package else 0)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                # ``from pkg import mod`` imports the module pkg.mod when there is one
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
            for target in targets:
                while target and target not in modules:  # artgan.export.verify.x -> artgan.export.verify
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def a_cycle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One import path from the component's first module back to itself, for the message."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return component


def test_artgan_has_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles among artgan's modules (move the code to its layer, docs/architecture.md):\n" + \
        "\n".join(f"- {len(c)} modules ({', '.join(c)}), e.g. {' -> '.join(a_cycle_through(c, graph))}" for c in found)


#: docs/architecture.md's layers, bottom up; a module imports only from its own layer or below.
LAYERS = [
    ("contracts", ["artgan", "errors", "files", "images", "hookspecs", "splits", "metrics", "tiling", "model_search",
                   "runtime", "int8", "steps", "process", "cards", "config", "tasks"]),
    ("plugin machinery", ["plugins"]),
    ("training contracts", ["train_options", "data", "recipe", "image_recipe", "training_tricks", "checkpoints",
                            "precision", "features", "image_gan"]),
    ("engines", ["train", "export", "gan_metrics", "evaluation", "bundle", "report", "ray_engine", "web"]),
    ("orchestration", ["pipeline", "api", "build", "build_card", "testing", "plugin_template", "doctor"]),
    ("command line", ["cli", "__main__"]),
]


def layer_of(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else module  # artgan.export.verify: export's layer
    return next((i for i, (_, names) in enumerate(LAYERS) if top in names), None)


def test_every_module_has_a_layer():
    missing = sorted(m for m in import_graph() if layer_of(m) is None)
    assert not missing, f"place these modules in a layer (LAYERS here and docs/architecture.md): {missing}"


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{m} ({LAYERS[layer_of(m)][0]}) -> {t} ({LAYERS[layer_of(t)][0]})"
              for m, targets in sorted(import_graph().items()) for t in sorted(targets)
              if layer_of(m) is not None and layer_of(t) is not None and layer_of(t) > layer_of(m)]
    assert not upward, "imports up the layers (move the code down, or pass it in):\n" + "\n".join(upward)


def test_the_layers_are_the_documented_ones():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name, modules in LAYERS:
        row = next((line for line in text.splitlines() if line.startswith(f"| **{name}** |")), "")
        assert row, f"docs/architecture.md's layer table has no row for {name!r}"
        assert [m for m in modules if m != "artgan" and f"`{m}`" not in row] == [], (name, row)


def test_the_graph_sees_every_form_of_import(tmp_path):
    pkg = tmp_path / "artgan"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import x\n")  # inside a function, relative
    (pkg / "b.py").write_text("import artgan.sub.c\n")  # absolute
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")  # a package's relative import
    (pkg / "sub" / "c.py").write_text("from artgan import a\nfrom ..d import y\n")
    (pkg / "d.py").write_text("")
    graph = import_graph(pkg)
    assert graph["artgan.a"] == {"artgan.b"} and graph["artgan.b"] == {"artgan.sub.c"}
    assert graph["artgan.sub"] == {"artgan.sub.c"} and graph["artgan.sub.c"] == {"artgan.a", "artgan.d"}
    assert cycles(graph) == [["artgan.a", "artgan.b", "artgan.sub.c"]]
    assert a_cycle_through(cycles(graph)[0], graph) == ["artgan.a", "artgan.b", "artgan.sub.c", "artgan.a"]
