"""A task (super-resolution, inpainting, style, augmentation ...) as one declared shape.

A task plugin registers its parts by name through the other hooks (an architecture, a dataset, a
step, an evaluation) and then says, through ``artgan_register_tasks``, which of them make one task:
``register("superres", lambda: Task(...))``. The core checks the declaration against the registry
(:func:`check_task`: every name it gives exists), ``artgan tasks`` lists the tasks with their
parts and the models installed for them, and the test kit (``artgan.testing.check_task``) fails a
plugin's tests on a task that names a part nobody registered.

No torch here: the declaration is names only, read when the CLI starts.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .errors import ArtganError

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
#: the fields that hold several names (tuples of strings)
_NAME_LISTS = ("architectures", "datasets", "baselines", "pipelines", "data_keys", "build_settings")


@dataclass(frozen=True)
class Task:
    """What one task is made of, by registered name.

    - ``name``: the task (``superres``); by convention also its evaluation's name and the folder
      its models install into (``exports/superres/``, found by ``--step superres:model=NAME``);
    - ``summary``: one line for ``artgan tasks``;
    - ``architectures``: the recipes that train its models (``train.architecture.name``);
    - ``datasets``: the datasets those recipes train on;
    - ``step``: the post-processing step that runs one of its models (``STEP:model=NAME``), or
      ``None`` for a task whose models are not image-to-image steps (augment: ``artgan synth``);
    - ``evaluation``: its ``artgan evaluate NAME``, or ``None``;
    - ``baselines``: other steps it is compared with (classical methods; the evaluation's rows);
    - ``models``: the model folder kind (default: ``name``);
    - ``pipelines``: the reference pipelines that build its models (paths in the repository or the
      plugin's folder); ``artgan build`` runs the first unless told ``--pipeline``;
    - ``data_keys``: the pipeline keys ``artgan build --data DIR`` sets to DIR
      (``train.dataset.path``); none: the pipeline trains on the data it names itself (augment,
      gan: built-in digits) and ``artgan build`` takes no ``--data``;
    - ``build_settings``: pipeline settings ``artgan build`` adds (``train.dataset.split=train``: the
      evaluation's held-out quarter stays out of training);
    - ``build``: the command that trains, exports, evaluates and installs a model in one go;
    - ``builder``: where a model is not made by running one pipeline on a data folder (style: from
      one painting), the plugin's own ``builder(request) -> model``: it takes an
      :class:`artgan.build.BuildRequest` (``--data``, ``--minutes``, ``--set`` as given) and
      returns an :class:`artgan.build.BuiltModel` (the exported model with its card in its run
      folder); ``artgan build`` does the rest as for every task (name checks, ``--to``/``--force``,
      the evaluation, the install, the command that reproduces it). Import torch inside it, not
      where the task is declared.
    """

    name: str
    summary: str
    architectures: tuple[str, ...]
    datasets: tuple[str, ...]
    step: str | None
    evaluation: str | None
    baselines: tuple[str, ...] = ()
    models: str = ""
    pipelines: tuple[str, ...] = ()
    data_keys: tuple[str, ...] = ()
    build_settings: tuple[str, ...] = ()
    build: str = ""
    builder: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ArtganError(f"task {self.name!r}: a task's name is lower-case letters, digits and '-'")
        for key in _NAME_LISTS:
            value = getattr(self, key)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ArtganError(f"task {self.name!r}: {key} must be a tuple of names, got {value!r}")
            object.__setattr__(self, key, tuple(value))
        if not self.models:
            object.__setattr__(self, "models", self.name)
        if self.builder is not None and not callable(self.builder):
            raise ArtganError(f"task {self.name!r}: builder must be a function (request -> model), "
                              f"got {self.builder!r}")

    def parts(self) -> dict[str, list[str]]:
        """Registry kind -> the names this task gives for it."""
        return {"architecture": list(self.architectures), "dataset": list(self.datasets),
                "step": [s for s in (self.step, *self.baselines) if s],
                "evaluation": [self.evaluation] if self.evaluation else []}

    def builds_by(self) -> str:
        """How ``artgan build`` makes one of its models, in words (``artgan tasks``)."""
        if self.builder is not None:
            return f"its plugin's builder ({_qualified(self.builder)})"
        if not self.pipelines:
            return "not by artgan build (the task names no pipeline)"
        if self.data_keys:
            return f"its pipeline, with --data DIR at {', '.join(self.data_keys)}"
        return "its pipeline, on the data the pipeline names (no --data)"

    def describe(self) -> dict[str, Any]:
        """JSON-ready (``artgan tasks --json``)."""
        fields = {k: list(v) if k in _NAME_LISTS else v for k, v in asdict(self).items()}
        return {**fields, "builder": _qualified(self.builder) if self.builder else None, "builds_by": self.builds_by()}


def _qualified(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"


def check_task(task: object, registry: Any, *, plugin: str = "?") -> list[str]:
    """What is wrong with a declared task, as one line each (empty: nothing): not a :class:`Task`,
    or a part that no plugin registered."""
    if not isinstance(task, Task):
        return [f"task of plugin {plugin!r}: its factory returned {type(task).__name__}, not an artgan.tasks.Task"]
    problems = []
    for kind, names in task.parts().items():
        known = registry.names(kind)
        for name in names:
            if name not in known:
                problems.append(f"task {task.name!r} (plugin {plugin!r}) names {kind} {name!r}, which no plugin "
                                f"registers (registered: {', '.join(known) or 'none'})")
    return problems


def load_tasks(registry: Any) -> tuple[dict[str, Task], list[str]]:
    """Every registered task, built, and the problems found (one line each)."""
    tasks: dict[str, Task] = {}
    problems: list[str] = []
    for name in registry.names("task"):
        reg = registry.get("task", name)
        try:
            task = reg.factory()
        except ArtganError as exc:
            problems.append(str(exc))
            continue
        except Exception as exc:  # a bug in the plugin: say whose
            problems.append(f"task {name!r} (plugin {reg.plugin!r}): its factory failed ({type(exc).__name__}: {exc})")
            continue
        found = check_task(task, registry, plugin=reg.plugin)
        if isinstance(task, Task) and task.name != name:
            found.append(f"task {name!r} (plugin {reg.plugin!r}) is registered as {name!r} but calls itself "
                         f"{task.name!r}; use one name")
        problems += found
        if isinstance(task, Task):
            tasks[name] = task
    return tasks, problems
