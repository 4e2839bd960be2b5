"""What a training runs with: one dataclass, a pipeline's ``train:`` stage and the options of
:func:`artgan.train.train` alike (no torch: the pipeline schema loads without it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainOptions:
    # -- what to train: named by a pipeline's train stage (required there); train() is handed the
    # dataset and recipe built from them and does not read these three
    dataset: Any = None  # a dataset name, or {name: ..., params}
    architecture: Any = None  # an architecture name, or {name: ..., params}
    loss: Any = None  # a loss name, or {name: ..., params}; None: the architecture's default
    # -- how long, on what
    iterations: int = 1000  # training iterations (optimiser updates of every phase that is due)
    batch_size: int = 64  # per process
    seed: int | None = None  # None: the pipeline's seed (0 outside a pipeline)
    device: str = "auto"  # auto: CUDA when present (cuda:LOCAL_RANK under torchrun), else CPU
    log_every: int = 50
    checkpoint_every: int = 250  # a sample grid is written with every checkpoint
    num_workers: int = 0
    sample_count: int = 64
    precision: str = "auto"  # auto: bf16 autocast unless measured clearly slower (artgan.precision); fp32; bf16
    channels_last: bool | None = None  # None: on for CUDA, measured on CPU; true/false forces it
    # time budget: end at a checkpoint once training (its precision probe included) has run this long; 0: none
    seconds: float = 0
    eval_every: int = 0  # the dataset's metrics (modes, FD, precision/recall) every n iterations and at the end; 0: never
    eval_samples: int = 5000  # generated images per evaluation during training
    collapse_ratio: float = 0.5  # warn when sample diversity drops below this x its best; 0: off
    tensorboard: bool = False  # also log to run_dir/tensorboard (needs `pip install tensorboard`)

    #: the keys a pipeline's train stage must give
    REQUIRED_IN_A_PIPELINE = ("dataset", "architecture")
