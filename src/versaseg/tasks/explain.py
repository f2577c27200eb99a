"""``versaseg explain``: what a trained network computes on one slice of one case, and how that evolved in training.

For a run (config.json + model.pt) and one case (its channel files): the case is normalised as the predictor does,
the whole volume is predicted, a slice is chosen (given, or the one with the most predicted foreground of the chosen
classes, or the middle), and the network is run on it with forward hooks on its stages
(:mod:`versaseg.viz.explain`). 2D runs see the slice itself; 3D runs see a ``patch_size`` window centred on the
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
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from versaseg.errors import InputError
from versaseg.io.atomic import replace_folder, write_text_atomic
from versaseg.training.history import csv_text
from versaseg.viz import explain as vx

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


@dataclass
class _View:
    """The network input for the chosen slice and how to map feature maps back to it."""

    x: torch.Tensor  # (1, C, *S) padded network input
    valid: list[tuple[int, int]]  # per spatial dim of x: the [low, high) part that shows the image
    depth_axis: int | None  # 3D runs: the dim of x along the run's axis; 2D runs: None
    depth_index: int  # 3D runs: the slice's index inside the window
    image: np.ndarray  # (A, B) channel 0 of the slice, as displayed
    box: tuple[slice, ...]  # where the displayed (A, B) plane lies in the volume's remaining axes


def load_run(run_dir: str | Path, device="cpu"):
    """A :class:`~versaseg.inference.predictor.Predictor` for ``run_dir`` (config.json + model.pt, weights_only)."""
    from versaseg.inference.predictor import Predictor

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
    channels: dict[str, int] = {}
    modules = dict(network.named_modules())
    handles = []

    def record(layer):
        def hook(_module, _inputs, output):
            try:
                channels[layer.name] = int(vx._read_part(output, layer).shape[1])
            except (InputError, IndexError, TypeError, AttributeError):
                pass
        return hook

    for layer in stages + others:
        if layer.module:
            handles.append(modules[layer.module].register_forward_hook(record(layer)))
    try:
        with torch.no_grad():
            channels[vx.OUTPUT] = int(network(x).shape[1])
    finally:
        for handle in handles:
            handle.remove()
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


def _valid_part(feature: torch.Tensor, view: _View) -> np.ndarray:
    """The part of a feature map ``(1, C, *S_l)`` that covers the image, sliced through the window's slice for 3D
    runs: ``(C, A, B)``; and the cropped map ``(C, *S')`` the statistics use."""
    data = feature[0].numpy()
    index = [slice(None)]
    for dim, (low, high) in enumerate(view.valid):
        scale = view.x.shape[2 + dim] / data.shape[1 + dim]
        index.append(slice(int(np.floor(low / scale)), max(int(np.ceil(high / scale)), int(np.floor(low / scale)) + 1)))
    return data[tuple(index)]


def _plane(cropped: np.ndarray, view: _View) -> np.ndarray:
    """(C, *S') -> (C, A, B): the slice through the window's slice for 3D runs."""
    if view.depth_axis is None:
        return cropped
    size_in = view.valid[view.depth_axis][1] - view.valid[view.depth_axis][0]
    n = cropped.shape[1 + view.depth_axis]
    local = view.depth_index - view.valid[view.depth_axis][0]
    k = min(max(int(round((local + 0.5) * n / size_in - 0.5)), 0), n - 1)
    return np.take(cropped, k, axis=1 + view.depth_axis)


def _build_view(image: np.ndarray, config, network, axis: int, index: int, foreground: np.ndarray) -> _View:
    """The network input for slice ``index`` of normalised ``image (C, X, Y, Z)`` along ``axis``."""
    from versaseg.data.sampling import crop, patch_start
    from versaseg.inference.window import pad_to_multiple

    divisor = int(getattr(network, "required_divisor", 1))
    other = [a for a in range(3) if a != axis]
    if config.spatial_dims == 2:
        plane = np.take(image, index, axis=axis + 1)  # (C, A, B)
        # padded (centred) exactly as the predictor pads a slice, so the maps are those of a real prediction
        x, inside = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(plane))[None], divisor,
                                     config.patch_size or ())
        valid = [(c.start, c.stop) for c in inside]
        box = tuple(slice(0, c.stop - c.start) for c in inside)
        return _View(x.float(), valid, None, 0, plane[0], box)
    spatial = image.shape[1:]
    plane_fg = np.take(foreground, index, axis=axis)
    centre = [0, 0, 0]
    centre[axis] = index
    if plane_fg.any():
        coords = np.argwhere(plane_fg).mean(0)
    else:
        coords = [spatial[a] / 2 for a in other]
    for a, c in zip(other, coords, strict=True):
        centre[a] = int(round(c))
    size = list(config.patch_size) if config.patch_size else [-(-s // divisor) * divisor for s in spatial]
    start = patch_start(centre, size, spatial)
    window = crop(image, start, size, 0.0)
    x, _ = pad_to_multiple(torch.from_numpy(window)[None], divisor)
    valid = [(max(0, -s), min(n, sp - s)) for s, n, sp in zip(start, size, spatial, strict=True)]
    local = index - start[axis]
    plane = np.take(window[0], local, axis=axis)
    lo = [valid[a] for a in other]
    box = tuple(slice(start[a] + lo[k][0], start[a] + lo[k][1]) for k, a in enumerate(other))
    plane = plane[lo[0][0]:lo[0][1], lo[1][0]:lo[1][1]]
    return _View(x.float(), valid, axis, local, plane, box)


def _cam_plane(cam_map: np.ndarray, view: _View) -> np.ndarray:
    cropped = cam_map[tuple(slice(lo, hi) for lo, hi in view.valid)]
    if view.depth_axis is None:
        return cropped
    return np.take(cropped, view.depth_index - view.valid[view.depth_axis][0], axis=view.depth_axis)


def _dice_per_class(pred: np.ndarray, label: np.ndarray, classes: int, ignore: int | None) -> list[float]:
    from versaseg.evaluation.metrics import dice

    annotated = np.ones(label.shape, bool) if ignore is None else label != ignore
    return [dice((pred == k) & annotated, (label == k) & annotated) for k in range(1, classes)]


@dataclass
class _Scene:
    """Everything the figures need about the chosen slice."""

    network: torch.nn.Module
    config: object  # TrainConfig
    view: _View
    x: torch.Tensor  # the network input on the run's device
    display: np.ndarray  # (A, B) channel 0, raw intensities
    prediction: np.ndarray  # (A, B) predicted labels of the final model
    label: np.ndarray | None  # (A, B) ground truth
    aspect: float
    class_names: list[str]
    predict_volume: Callable[[], np.ndarray]  # whole-volume labels (X, Y, Z) of the network's current weights
    volume_label: np.ndarray | None  # (X, Y, Z) ground truth


def _choose_slice(prediction: np.ndarray, axis: int, classes: list[int], requested: int | None, image: Path) -> int:
    count = prediction.shape[axis]
    if requested is None:
        selected = np.isin(prediction, classes) if classes else prediction > 0
        per_slice = selected.sum(axis=tuple(a for a in range(3) if a != axis))
        return int(np.argmax(per_slice)) if per_slice.any() else count // 2
    if not 0 <= requested < count:
        raise InputError(f"--slice {requested} is out of range 0..{count - 1} (axis {axis} of the image in canonical "
                         "RAS order)", image)
    return int(requested)


def _scene(predictor, case, classes: list[int], requested_slice: int | None, image_path: Path) -> tuple[_Scene, int]:
    from versaseg.data.normalization import normalize

    network, config = predictor.network, predictor.config
    image = normalize(case.image, config.normalization)

    def predict_labels() -> np.ndarray:  # as `versaseg predict` computes it (the predictor is made without TTA)
        return predictor.run(image).argmax(0).numpy()

    prediction = predict_labels()
    axis = config.axis
    index = _choose_slice(prediction, axis, classes, requested_slice, image_path)
    foreground = np.isin(prediction, classes) if classes else prediction > 0
    view = _build_view(image, config, network, axis, index, foreground)
    other = [a for a in range(3) if a != axis]

    def plane(volume: np.ndarray) -> np.ndarray:
        return np.take(volume, index, axis=axis)[view.box]

    scene = _Scene(network, config, view, view.x.to(predictor.device), plane(case.image[0]), plane(prediction),
                   None if case.label is None else plane(case.label), case.spacing[other[1]] / case.spacing[other[0]],
                   config.class_names, predict_labels, case.label)
    return scene, index


def _write_cams(scene: _Scene, cam: vx.GradCam, cam_layer: vx.Layer, classes: list[int], folder: Path
                ) -> tuple[list, dict]:
    items: list = [
        f"Grad-CAM (MONAI) at layer {cam_layer.name} ({cam_layer.role}): red = the regions whose features made the "
        "network predict the class where it did on this slice (where it predicts the class nowhere: that raise its "
        "score anywhere); gradient-weighted feature maps, rectified, upsampled to the image and scaled to [0, 1]. "
        "Where it lights up outside the structure, the network uses context there."]
    files = {}
    for k in classes:
        cam_map = _cam_plane(cam(scene.x, k), scene.view)
        name = scene.class_names[k]
        np.save(folder / f"cam_{name}.npy", cam_map.astype(np.float32))
        vx.overlay_figure(scene.display, folder / f"cam_{name}.png", f"Grad-CAM: {name} (layer {cam_layer.name})",
                          [("image", None, "none"), (f"Grad-CAM {name}", cam_map, "heat"),
                           ("prediction", scene.prediction, "labels")], scene.aspect, len(scene.class_names),
                          scene.class_names)
        files[name] = f"cam_{name}.png"
        items.append(Path(f"cam_{name}.png"))
    return items, files


def _write_layers(scene: _Scene, layers: Sequence[vx.Layer], max_channels: int, folder: Path) -> list[tuple]:
    maps = vx.capture(scene.network, scene.x, layers)
    rows, items = [], [
        "One grid per layer: each panel is one channel (feature map) of the layer on this slice, with its own colour "
        f"scale (yellow = strong); up to {max_channels} channels, those that vary most over the slice first (the "
        "output's channels in class order). Early layers respond to edges and intensities, deep ones to larger "
        "shapes; the residual stream of FRRN-type networks keeps fine detail at full resolution."]
    (folder / "layers").mkdir(exist_ok=True)
    for number, layer in enumerate(layers):
        cropped = _valid_part(maps[layer.name], scene.view)
        png = Path("layers") / f"{number:02d}_{layer.file_stem}.png"
        is_output = layer.name == vx.OUTPUT
        shown = vx.feature_grid(_plane(cropped, scene.view), folder / png, f"{layer.name}: {layer.role}",
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


def _write_timeline(scene: _Scene, run_dir: Path, snapshots: list[tuple[int, Path]], layer: vx.Layer,
                    cam: vx.GradCam, cam_class: int | None, channels: int, folder: Path, show_progress: bool) -> list:
    """Replay the saved epochs on the slice (the network gets its final weights back afterwards)."""
    from versaseg.io.run_dir import load_safe
    from versaseg.progress import progress

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
            feature = _plane(_valid_part(captured[layer.name], scene.view), scene.view)
            logits = _plane(_valid_part(captured[vx.OUTPUT], scene.view), scene.view)
            cam_map = None if cam_class is None else _cam_plane(cam(scene.x, cam_class), scene.view)
            frames.append((epoch, feature, logits.argmax(0), cam_map))
            row: dict = {"epoch": epoch}
            if scene.volume_label is not None:
                scores = _dice_per_class(scene.predict_volume(), scene.volume_label, len(names),
                                         scene.config.ignore_label)
                row.update({f"dice_{n}": s for n, s in zip(names[1:], scores, strict=True)})
            rows.append(row)
    finally:
        network.load_state_dict(final_state)
    if scene.volume_label is None:
        rows = _validation_dice(run_dir, [e for e, _ in snapshots])
    png = Path(f"timeline_{layer.file_stem}.png")
    cam_name = None if cam_class is None else names[cam_class]
    cam_text = "" if cam_name is None else f" and the Grad-CAM of {cam_name}"
    _timeline_figure(frames, folder / png, layer, channels, cam_name, scene.aspect, names, scene.display)
    (folder / "timeline.csv").write_text(csv_text(rows))
    items: list = [
        f"The network as saved during training (RUN/checkpoints, {len(snapshots)} epochs): each row is one saved "
        f"epoch; the first columns are channels of layer {layer.name} (the same channels in every row: those that vary "
        f"most at the last saved epoch), then the prediction{cam_text} on this slice. Compare runs trained with "
        "different losses to see what each loss makes the network attend to.", png]
    if any(len(r) > 1 for r in rows):
        own = scene.volume_label is not None
        _dice_figure(rows, folder / "dice_timeline.png", "Dice of this case against its ground truth (--label)" if own
                     else "validation Dice (RUN/metrics.csv)", names)
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
    from versaseg.data.case import load_case
    from versaseg.io.dataset import CaseFiles
    from versaseg.training.checkpoint import list_snapshots
    from versaseg.viz.report import write_html_report

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
    scene, slice_index = _scene(predictor, case, classes, settings.slice_index, images[0])
    snapshots = list_snapshots(run_dir)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        axis = config.axis
        where = (f"slice {slice_index} along axis {axis} ({'xyz'[axis]} in canonical RAS order)" +
                 ("" if config.spatial_dims == 2 else f", through a {config.patch_size} window of the 3D network"))
        panels = [("image", None, "none"), ("prediction", scene.prediction, "labels")]
        if scene.label is not None:
            panels.append(("label", scene.label, "labels"))
        vx.overlay_figure(scene.display, tmp / "prediction.png", f"slice {slice_index}", panels, scene.aspect,
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
        replace_folder(tmp, out, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / "index.html"


def _validation_dice(run_dir: Path, epochs: list[int]) -> list[dict]:
    from versaseg.viz.curves import read_metrics_csv

    path = run_dir / "metrics.csv"
    if not path.exists():
        return [{"epoch": e} for e in epochs]
    columns = read_metrics_csv(path)
    rows = []
    epoch_column = columns.get("epoch", np.array([]))
    for epoch in epochs:
        row: dict = {"epoch": epoch}
        hits = np.flatnonzero(epoch_column == epoch)
        if hits.size:
            for name, values in columns.items():
                if name.startswith("val_dice_") and name != "val_dice_mean" and np.isfinite(values[hits[0]]):
                    row[name] = float(values[hits[0]])
        rows.append(row)
    return rows


def _timeline_figure(frames, out_png: Path, layer: vx.Layer, channels: int, cam_name: str | None, aspect: float,
                     class_names: Sequence[str], image: np.ndarray) -> None:
    from matplotlib.figure import Figure

    from versaseg.viz.overlays import class_legend, label_colormap, save_figure

    shown = vx.top_channels(frames[-1][1], channels)
    columns = len(shown) + 1 + (cam_name is not None)
    a, b = frames[-1][1].shape[1:]
    panel = 1.5
    ratio = b * aspect / a
    height = panel * ratio * len(frames) + 1.1
    fig = Figure(figsize=(panel * columns + 0.6, height))
    grid = fig.add_gridspec(len(frames), columns, wspace=0.04, hspace=0.08, left=0.6 / (panel * columns + 0.6),
                            right=0.99, bottom=0.4 / height, top=1 - 0.6 / height)
    colours = label_colormap(max(len(class_names), 2))
    for row, (epoch, feature, pred, cam_map) in enumerate(frames):
        for col, channel in enumerate(shown):
            ax = fig.add_subplot(grid[row, col])
            vx._show(ax, feature[channel], aspect, cmap="viridis")
            if row == 0:
                ax.set_title(f"ch {channel}", fontsize=7)
            if col == 0:
                ax.set_ylabel(f"epoch {epoch}", fontsize=7)
        ax = fig.add_subplot(grid[row, len(shown)])
        low, high = vx._window(image)
        vx._show(ax, image, aspect, cmap="gray", vmin=low, vmax=high)
        rgba = colours[np.clip(pred, 0, len(colours) - 1)]
        rgba[..., 3] *= 0.6
        ax.imshow(np.transpose(rgba, (1, 0, 2)), origin="lower", aspect=aspect, interpolation="nearest")
        if row == 0:
            ax.set_title("prediction", fontsize=7)
        if cam_map is not None:
            ax = fig.add_subplot(grid[row, len(shown) + 1])
            vx._show(ax, cam_map, aspect, cmap="jet", vmin=0.0, vmax=1.0)
            if row == 0:
                ax.set_title(f"Grad-CAM {cam_name}", fontsize=7)
    fig.suptitle(f"{layer.name} across training (feature maps: yellow = strong, own scale per panel"
                 + ("; Grad-CAM: red = most contribution)" if cam_name is not None else ")"), fontsize=9)
    class_legend(fig, dict(enumerate(class_names)), colours, fontsize=7)
    save_figure(fig, out_png)


def _dice_figure(rows: list[dict], out_png: Path, title: str, class_names: Sequence[str]) -> None:
    """Per-class Dice over the saved epochs, each class in its overlay colour, ticks at the saved epochs."""
    from matplotlib.figure import Figure

    from versaseg.viz.overlays import label_colormap, save_figure

    colours = label_colormap(max(len(class_names), 2))
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    epochs = [row["epoch"] for row in rows]
    for name in dict.fromkeys(k for row in rows for k in row if k != "epoch"):
        label = name.split("dice_", 1)[-1]
        colour = colours[class_names.index(label)][:3] if label in class_names[1:] else None
        ax.plot(epochs, [row.get(name, np.nan) for row in rows], marker="o", label=label, color=colour)
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch (saved weights)")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_png)
