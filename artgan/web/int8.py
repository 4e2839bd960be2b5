"""``artgan web --int8 PHOTOS``: an image-to-image model quantised to int8 for the page, where it
keeps its quality.

onnxruntime-web's WASM backend runs int8 convolutions on integer SIMD, faster than float ones
(the x2 upscaler of a 512x512 image: 1.5 s against 2.3 s, docs/web.md). The model is calibrated
on crops of the training part of PHOTOS (:func:`artgan.splits.split_files`) and checked on the
held-out part: the int8 model's 8-bit outputs against the float model's, lowest PSNR over the
photos. Below :data:`MIN_PSNR_DB` the page keeps the float model and says why. Never imports torch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtganError

MIN_PSNR_DB = 40.0  # as the fp16 export check: differences a person does not see
CALIBRATION = (16, 128)  # photos, crop side
CHECK = (8, 256)


def quantizable(entry: dict[str, Any]) -> bool:
    """An image-to-image model with one image input: what photos can calibrate."""
    return entry["metadata"].get("task") == "image-to-image" and len(entry["inputs"]) == 1


def int8_for_web(source: Path, dest: Path, entry: dict[str, Any], photos: Path) -> dict[str, Any]:
    """Write ``source`` quantised to int8 into ``dest`` when it keeps quality, else ``source``
    unchanged; return ``{"int8": bool, "psnr_db": lowest PSNR against float, "photos": n, "line": what
    happened}``. ``entry`` is the model's models.json entry (its metadata and inputs)."""
    from ..images import list_images, to_uint8
    from ..int8 import quantize_int8
    from ..metrics import psnr
    from ..splits import split_files
    from ..steps import OnnxImageStep

    files = list_images(photos) if Path(photos).is_dir() else []
    train, heldout = split_files(files, "train"), split_files(files, "heldout")
    if not train or not heldout:
        raise ArtganError(f"--int8 {photos}: needs a folder of at least 4 photos (calibrated on three quarters, "
                          f"checked on the rest); found {len(files)}")
    meta = entry["metadata"]
    fp32 = OnnxImageStep(source, providers=["CPUExecutionProvider"])
    # the inputs as the step makes them: the photo in the model's value range, NCHW
    calibration = [{entry["inputs"][0]["name"]: fp32._to_model(_centre_crop(p, meta, CALIBRATION[1])[None])}
                   for p in train[:CALIBRATION[0]]]
    shutil.copyfile(source, dest)
    quantize_int8(dest, calibration)

    int8 = OnnxImageStep(dest, providers=["CPUExecutionProvider"])
    psnrs = []
    for p in heldout[:CHECK[0]]:
        x = _centre_crop(p, meta, CHECK[1])
        psnrs.append(psnr(to_uint8(fp32.run_one(x)), to_uint8(int8.run_one(x)), data_range=255))
    worst = min(psnrs)
    if worst < MIN_PSNR_DB:
        shutil.copyfile(source, dest)
        return {"int8": False, "psnr_db": worst, "photos": len(psnrs),
                "line": f"{source.stem}: kept in fp32: int8 reaches {worst:.1f} dB against it on {len(psnrs)} "
                        f"held-out photos of {photos}, under {MIN_PSNR_DB:g}"}
    _stamp(dest, {"precision": "int8",
                  "calibration": f"{len(calibration)} centre crops ({CALIBRATION[1]} px) of {Path(photos).name}'s "
                                 f"training photos",
                  "int8_check": {"psnr_db_vs_fp32": round(worst, 2), "photos": len(psnrs), "crop": CHECK[1]}})
    return {"int8": True, "psnr_db": worst, "photos": len(psnrs),
            "line": f"{source.stem}: int8, {worst:.1f} dB against fp32 at worst on {len(psnrs)} held-out photos"}


def _centre_crop(path: Path, meta: dict[str, Any], crop: int) -> np.ndarray:
    """A photo's centre crop (side ``crop`` or its shorter side, a multiple of the model's
    ``size_multiple``), HWC in [0, 1], with the model's channels."""
    from ..images import load_image, to_float

    image = to_float(load_image(path, "L" if int(meta.get("channels", 3)) == 1 else "RGB"))
    if image.ndim == 2:
        image = image[..., None]
    m = int(meta.get("size_multiple", 1) or 1)
    side = min(crop, *image.shape[:2]) // m * m
    y, x = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    return image[y:y + side, x:x + side]


def _stamp(path: Path, fields: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p for p in model.metadata_props}
    for key, value in fields.items():
        text = json.dumps(value)
        if f"artgan.{key}" in props:
            props[f"artgan.{key}"].value = text
        else:
            model.metadata_props.add(key=f"artgan.{key}", value=text)
    onnx.save(model, str(path))
