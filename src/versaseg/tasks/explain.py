"""``versaseg explain``: what a trained network computes on one slice of one case, and how that evolved in training.

For a run (config.json + model.pt) and one case (its channel files): the case is normalised as the predictor does,
the whole volume is predicted, a slice is chosen (given, or the one with the most predicted foreground of the chosen
classes, or the middle), and the network is run on it with forward hooks on its stages
(:mod:`versaseg.viz.explain`; the slice's view: :mod:`versaseg.viz.explain_view`, the figures:
:mod:`versaseg.viz.explain_figures`). 2D runs see the slice itself; 3D runs see a ``patch_size`` window centred on the
slice's predicted foreground (or its centre), and the figures show the slice of each 3D feature map through the
window's slice. Written atomically into OUT (built in a hidden sibling folder, renamed at the end)::

    OUT/index.html            everything below, with a line of explanation each
    OUT/prediction.png        the slice, the prediction (and the label, with --label)
    OUT/layers/NN_NAME.png    one grid per layer: up to --max-channels channels, largest variance first
    OUT/stats.csv, stats.json per-layer activation statistics on the slice (window for 3D runs)
    OUT/cam_CLASS.png, .npy   Grad-CAM (MONAI) of each chosen class over the slice, values in [0, 1]
    OUT/timeline_LAYER.png    with RUN/checkpoints/epoch_*.pt (`versaseg train --save-every N`): the timeline layer's
                              channels, the prediction and the Grad-CAM of the first chosen class at every saved epoch
    OUT/timeline.csv, dice_timeline.png   per-class Dice across the saved epochs: of this case's prediction against
                              --label, else the validation Dice recorded in RUN/metrics.csv
    OUT/explain.json          the choices made (slice, layers, classes, checkpoints)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from versaseg.data.case import load_case
from versaseg.errors import InputError
from versaseg.evaluation.validation import validation_dice
from versaseg.inference.predictor import Predictor
from versaseg.io.atomic import atomic_folder, write_text_atomic
from versaseg.io.dataset import CaseFiles
from versaseg.io.run_dir import load_safe
from versaseg.progress import progress
from versaseg.training.checkpoint import list_snapshots
from versaseg.training.history import csv_text
from versaseg.viz import explain as vx
from versaseg.viz import explain_figures as figures
from versaseg.viz.curves import validation_dice_at
from versaseg.viz.explain_view import Scene, cam_plane, slice_scene, valid_part, view_plane
from versaseg.viz.report import write_html_report

EXPLAIN_MARKER = "explain.json"


@dataclass
class ExplainSettings:
    """layers: names/globs (empty = the network's stages); slice_index: along the run's axis in canonical RAS order
    (None = automatic); classes: class names for Grad-CAM and the automatic slice (empty = every foreground class);
    cam_layer / timeline_layer: a layer name (empty = the first decoder stage); max_channels per grid;
    timeline_channels: channels per epoch row."""

    layers: list[str] = field(default_factory=list)
    slice_index: int | None = None
    classes: list[str] = field(default_factory=list)
    cam_layer: str = ""
    timeline_layer: str = ""
    max_channels: int = 16
    timeline_channels: int = 6


def load_run(run_dir: str | Path, device="cpu") -> Predictor:
    """A :class:`~versaseg.inference.predictor.Predictor` for ``run_dir`` (config.json + model.pt, weights_only)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("run directory not found", run_dir)
    predictor = Predictor(run_dir, device=device)
    vx.prepare_network(predictor.network)
    return predictor


def list_layers(run_dir: str | Path) -> list[tuple[vx.Layer, int | None, bool]]:
    """``[(layer, channels, is_default_stage)]``: the default stages, then every other module, for ``--list-layers``.

    Channels come from one forward pass of a small zero input (None for modules that output no feature map).
    """
    predictor = load_run(run_dir)
    network, config = predictor.network, predictor.config
    divisor = int(getattr(network, "required_divisor", 1))
    x = torch.zeros(1, len(config.channel_names), *([divisor * 2] * config.spatial_dims))
    stages = vx.default_layers(network)
    names = {layer.name for layer in stages}
    others = [layer for layer in vx.all_module_layers(network) if layer.name not in names]
    channels = vx.layer_channels(network, x, stages + others)
    return [(layer, channels.get(layer.name), True) for layer in stages] + \
        [(layer, channels.get(layer.name), False) for layer in others]


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise InputError("output exists; pass --overwrite to replace it", out)
        if not (out / EXPLAIN_MARKER).exists():
            raise InputError("refusing to --overwrite a non-empty folder that is not a versaseg explain output", out)


def _check_classes(names: Sequence[str], class_names: list[str]) -> list[int]:
    indices = []
    for name in names:
        if name not in class_names:
            raise InputError(f"--class: unknown class '{name}'; valid: {', '.join(class_names)}")
        indices.append(class_names.index(name))
    return indices


def _find_layer(network, name: str, option: str, candidates: Sequence[vx.Layer]) -> vx.Layer:
    for layer in candidates:
        if layer.name == name:
            return layer
    matches = vx.select_layers(network, [name]) if name else []
    if len(matches) != 1:
        raise InputError(f"{option}: '{name}' must name exactly one layer (it matches {len(matches)}); "
                         "see `versaseg explain RUN --list-layers`")
    return matches[0]


def _write_cams(scene: Scene, cam: vx.GradCam, cam_layer: vx.Layer, classes: list[int], folder: Path
                ) -> tuple[list, dict]:
    items: list = [
        f"Grad-CAM (MONAI) at layer {cam_layer.name} ({cam_layer.role}): red = the regions whose features made the "
        "network predict the class where it did on this slice (where it predicts the class nowhere: that raise its "
        "score anywhere); gradient-weighted feature maps, rectified, upsampled to the image and scaled to [0, 1]. "
        "Where it lights up outside the structure, the network uses context there."]
    files = {}
    for k in classes:
        cam_map = cam_plane(cam(scene.x, k), scene.view)
        name = scene.class_names[k]
        np.save(folder / f"cam_{name}.npy", cam_map.astype(np.float32))
        figures.overlay_figure(scene.display, folder / f"cam_{name}.png", f"Grad-CAM: {name} (layer {cam_layer.name})",
                          [("image", None, "none"), (f"Grad-CAM {name}", cam_map, "heat"),
                           ("prediction", scene.prediction, "labels")], scene.aspect, len(scene.class_names),
                          scene.class_names)
        files[name] = f"cam_{name}.png"
        items.append(Path(f"cam_{name}.png"))
    return items, files


def _write_layers(scene: Scene, layers: Sequence[vx.Layer], max_channels: int, folder: Path) -> list[tuple]:
    maps = vx.capture(scene.network, scene.x, layers)
    rows, items = [], [
        "One grid per layer: each panel is one channel (feature map) of the layer on this slice, with its own colour "
        f"scale (yellow = strong); up to {max_channels} channels, those that vary most over the slice first (the "
        "output's channels in class order). Early layers respond to edges and intensities, deep ones to larger "
        "shapes; the residual stream of FRRN-type networks keeps fine detail at full resolution."]
    (folder / "layers").mkdir(exist_ok=True)
    for number, layer in enumerate(layers):
        cropped = valid_part(maps[layer.name], scene.view)
        png = Path("layers") / f"{number:02d}_{layer.file_stem}.png"
        is_output = layer.name == vx.OUTPUT
        shown = figures.feature_grid(view_plane(cropped, scene.view), folder / png, f"{layer.name}: {layer.role}",
                                max_channels, scene.class_names if is_output else None, scene.aspect,
                                by_variance=not is_output)
        rows.append({"layer": layer.name, "role": layer.role, **vx.activation_stats(cropped),
                     "shown_channels": " ".join(str(c) for c in shown), "png": png.as_posix()})
        items += [f"{layer.name}: {layer.role}", png]
    (folder / "stats.csv").write_text(csv_text(rows))
    (folder / "stats.json").write_text(json.dumps({"layers": rows}, indent=2) + "\n")
    table = [{k: v for k, v in row.items() if k not in ("shown_channels", "png")} for row in rows]
    return [("Feature maps by layer", items), ("Activation statistics (stats.csv, stats.json)", [
        "Per layer, over the whole slice (2D runs) or window (3D runs): mean, std, min, max and mean |x| of the "
        "activations; fraction_zero = exactly zero; fraction_inactive = zero or negative (a (leaky) ReLU passes "
        "little there); dead_channels = channels with no positive value anywhere here. Many dead channels or a std "
        "near zero mean capacity the network does not use on this image.",
        table, Path("stats.csv"), Path("stats.json")])]


def _write_timeline(scene: Scene, run_dir: Path, snapshots: list[tuple[int, Path]], layer: vx.Layer,
                    cam: vx.GradCam, cam_class: int | None, channels: int, folder: Path, show_progress: bool) -> list:
    """Replay the saved epochs on the slice (the network gets its final weights back afterwards)."""
    if not snapshots:
        return ["This run has no intermediate checkpoints; train with `versaseg train ... --save-every N` to see how "
                "the feature maps and the Dice evolve."]
    network, names = scene.network, scene.class_names
    final_state = {k: v.clone() for k, v in network.state_dict().items()}
    frames, rows = [], []
    try:
        for epoch, path in progress(snapshots, "checkpoints", "ckpt", enabled=show_progress, leave=False):
            try:
                network.load_state_dict(load_safe(path))
            except (RuntimeError, TypeError, AttributeError) as exc:
                raise InputError(f"weights do not match the network in config.json ({str(exc).splitlines()[0]})",
                                 path) from None
            captured = vx.capture(network, scene.x, [layer, vx.Layer(vx.OUTPUT, "", "out", "")])
            feature = view_plane(valid_part(captured[layer.name], scene.view), scene.view)
            logits = view_plane(valid_part(captured[vx.OUTPUT], scene.view), scene.view)
            cam_map = None if cam_class is None else cam_plane(cam(scene.x, cam_class), scene.view)
            frames.append((epoch, feature, logits.argmax(0), cam_map))
            row: dict = {"epoch": epoch}
            if scene.volume_label is not None:
                scores = validation_dice(scene.predict_volume(), scene.volume_label, scene.config.ignore_label)
                row.update({f"dice_{n}": float(s) for n, s in zip(names[1:], scores, strict=True)})
            rows.append(row)
    finally:
        network.load_state_dict(final_state)
    if scene.volume_label is None:
        rows = validation_dice_at(run_dir / "metrics.csv", [e for e, _ in snapshots])
    png = Path(f"timeline_{layer.file_stem}.png")
    cam_name = None if cam_class is None else names[cam_class]
    cam_text = "" if cam_name is None else f" and the Grad-CAM of {cam_name}"
    figures.timeline_figure(frames, folder / png, layer, channels, cam_name, scene.aspect, names, scene.display)
    (folder / "timeline.csv").write_text(csv_text(rows))
    items: list = [
        f"The network as saved during training (RUN/checkpoints, {len(snapshots)} epochs): each row is one saved "
        f"epoch; the first columns are channels of layer {layer.name} (the same channels in every row: those that vary "
        f"most at the last saved epoch), then the prediction{cam_text} on this slice. Compare runs trained with "
        "different losses to see what each loss makes the network attend to.", png]
    if any(len(r) > 1 for r in rows):
        own = scene.volume_label is not None
        title = "Dice of this case against its ground truth (--label)" if own else "validation Dice (RUN/metrics.csv)"
        figures.dice_figure(rows, folder / "dice_timeline.png", title, names)
        items += [("Per-class Dice of this case's prediction against --label at each saved epoch." if own else
                   "Per-class validation Dice recorded in RUN/metrics.csv at the saved epochs (give --label for this "
                   "case's own Dice)."), Path("dice_timeline.png"), rows, Path("timeline.csv")]
    return items


def explain(run_dir: str | Path, images: Sequence[str | Path], out: str | Path, label: str | Path | None = None,
            settings: ExplainSettings | None = None, device="cpu", overwrite: bool = False,
            show_progress: bool = True) -> Path:
    """Write the explanation of ``run_dir`` on the case ``images`` (its channel files, in order) into ``out``.

    Returns ``out/index.html``. Raises InputError (one line naming the file or option) for a run without
    config.json/model.pt, the wrong number of channels, channels or label with another geometry, unknown layer or
    class names, a slice out of range, or an occupied ``out`` without ``overwrite``.
    """
    settings = settings or ExplainSettings()
    out, run_dir = Path(out), Path(run_dir)
    images = [Path(p) for p in images]
    if settings.max_channels < 1 or settings.timeline_channels < 1:
        raise InputError("--max-channels must be at least 1")
    predictor = load_run(run_dir, device)
    network, config = predictor.network, predictor.config
    if not images:
        raise InputError("no IMAGE given (the case's channel files, in the run's channel order)")
    if len(images) != len(config.channel_names):
        raise InputError(f"{len(images)} image file(s) given, the run expects {len(config.channel_names)} channel(s) "
                         f"({', '.join(config.channel_names)}) in that order", images[0])
    _prepare_out(out, overwrite)
    class_names = config.class_names
    classes = _check_classes(settings.classes, class_names) if settings.classes else list(range(1, len(class_names)))
    layers = vx.select_layers(network, settings.layers)
    stages = vx.default_layers(network)
    cam_layer = _find_layer(network, settings.cam_layer, "--cam-layer", stages) if settings.cam_layer else \
        vx.default_cam_layer(network, stages)
    cam_module = vx.cam_module(network, cam_layer)
    timeline_layer = _find_layer(network, settings.timeline_layer, "--timeline-layer", stages) \
        if settings.timeline_layer else cam_layer
    case = load_case(CaseFiles("case", images, None if label is None else Path(label)), set(config.labels.values()))
    scene, slice_index = slice_scene(predictor, case, classes, settings.slice_index, images[0])
    snapshots = list_snapshots(run_dir)

    with atomic_folder(out, overwrite=overwrite) as tmp:
        axis = config.axis
        where = (f"slice {slice_index} along axis {axis} ({'xyz'[axis]} in canonical RAS order)" +
                 ("" if config.spatial_dims == 2 else f", through a {config.patch_size} window of the 3D network"))
        panels = [("image", None, "none"), ("prediction", scene.prediction, "labels")]
        if scene.label is not None:
            panels.append(("label", scene.label, "labels"))
        figures.overlay_figure(scene.display, tmp / "prediction.png", f"slice {slice_index}", panels, scene.aspect,
                          len(class_names), class_names)
        sections: list[tuple[str, list]] = [("What this shows", [
            f"Run {run_dir} ({config.network}, {config.dim}, loss {config.loss}) on "
            f"{', '.join(str(p) for p in images)}: {where}.",
            "A segmentation network turns the image into many feature maps, stage by stage: the encoder looks at ever "
            "larger regions at ever coarser resolution, the decoder brings that context back to full resolution, "
            "joined with the encoder's maps of the same resolution (the skip connections), and the last layer turns "
            "the features into one score map per class. The pictures below show these maps for one slice.",
            Path("prediction.png")])]
        cam = vx.GradCam(network, cam_module)
        cam_items, cam_files = _write_cams(scene, cam, cam_layer, classes, tmp)
        sections.append(("Where the network looks, per class", cam_items))
        sections += _write_layers(scene, layers, settings.max_channels, tmp)
        sections.append(("Across training", _write_timeline(
            scene, run_dir, snapshots, timeline_layer, cam, classes[0] if classes else None,
            settings.timeline_channels, tmp, show_progress)))
        record = {"run": str(run_dir), "images": [str(p) for p in images],
                  "label": None if label is None else str(label), "axis": axis, "slice": slice_index,
                  "dim": config.dim, "layers": [asdict(layer) for layer in layers], "cam_layer": cam_layer.name,
                  "cam_module": cam_module, "timeline_layer": timeline_layer.name,
                  "classes": [class_names[k] for k in classes], "cam_files": cam_files,
                  "checkpoints": [{"epoch": e, "file": p.relative_to(run_dir).as_posix()} for e, p in snapshots]}
        write_text_atomic(tmp / EXPLAIN_MARKER, json.dumps(record, indent=2) + "\n")
        write_html_report(tmp / "index.html", f"versaseg explain: {run_dir.name}", sections)
    return out / "index.html"
