"""A self-contained HTML review page: the image with label overlays in three linked planes (NiiVue, offline).

One file holds everything: the NiiVue viewer (``vendor/niivue.umd.js``, BSD-2-Clause, from npm ``@niivue/niivue``),
the image and each label map as base64 NIfTI, and the controls. It opens from disk in any WebGL2 browser, with no
server and no network. The page shows the three planes (sagittal, coronal, axial) linked by the crosshair; a plane
selector and slider move the crosshair slice by slice; an opacity slider; a checkbox per label layer and per
segment; and, for a completion, buttons that jump to the annotated slices, the slices judged wrong (compare the
"input" layer, before, with the "completion" layer, after) and the suggested slices.

Volumes are written in canonical RAS+ voxel order so that the viewer's voxel indices are the canonical ones; slice
numbers on the page are those of the *stored* arrays (what the report and other tools use). The image is windowed
to its 0.5-99.5 percentiles and stored as 8 bits (the page is for looking, not measuring).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from versaseg.io.atomic import atomic_path, check_writable
from versaseg.io.image import Volume, to_canonical
from versaseg.io.segmentation import Segment, default_segments

AXIS_NAMES = ("sagittal", "coronal", "axial")  # canonical RAS+ axes 0, 1, 2


@dataclass
class LabelLayer:
    """A label map to overlay: ``volume`` (I, J, K integers, the image's geometry), its display name, its segments
    (None: default names and colours) and a value not to draw (an ignore label)."""

    name: str
    volume: Volume
    segments: tuple[Segment, ...] | None = None
    hidden_value: int | None = None


def _nifti_base64(array: np.ndarray, affine: np.ndarray) -> str:
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return base64.b64encode(gzip.compress(image.to_bytes(), compresslevel=6)).decode("ascii")


def _window_uint8(array: np.ndarray) -> np.ndarray:
    data = np.asarray(array, dtype=np.float32)
    finite = data[np.isfinite(data)]
    low, high = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    scaled = (np.clip(data, low, high) - low) / max(float(high - low), 1e-6)
    return np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)


class _Canonical:
    """Maps stored slice indices to canonical ones for the page (the orientation of the image)."""

    def __init__(self, reference: Volume):
        import nibabel.orientations as nio

        self.orientation = nio.io_orientation(reference.affine)
        self.shape = reference.shape

    def axis(self, stored_axis: int) -> int:
        return int(self.orientation[stored_axis, 0])

    def index(self, stored_axis: int, stored_index: int) -> int:
        flipped = self.orientation[stored_axis, 1] < 0
        return self.shape[stored_axis] - 1 - stored_index if flipped else stored_index


def completion_marks(report: dict, reference: Volume, suggested: list[dict] | None = None) -> list[dict]:
    """Slices to jump to from a completion report (``versaseg complete --report``): annotated, judged wrong and
    suggested. Each mark: kind, stored axis and index, canonical axis and index (what the page moves to)."""
    canonical = _Canonical(reference)
    marks = []

    def add(kind: str, axis: int, index: int) -> None:
        marks.append({"kind": kind, "axis": int(axis), "slice": int(index), "view_axis": canonical.axis(axis),
                      "view_slice": canonical.index(axis, int(index))})

    planes = report.get("planes") or {str(report["annotation_axis"]): report["annotated_slices"]}
    for axis, indices in planes.items():
        for index in indices:
            add("annotated", int(axis), index)
    for entry in report.get("slices_judged_wrong", []):
        add("judged wrong", int(report["annotation_axis"]), entry["slice"])
    for entry in suggested if suggested is not None else report.get("suggested", []):
        add("suggested", int(entry["axis"]), entry["slice"])
    return marks


def review_page(image: Volume, layers: list[LabelLayer], title: str, marks: list[dict] | None = None,
                opacity: float = 0.5) -> str:
    """The page's HTML (one string, everything inlined)."""
    canonical_image, affine, _ = to_canonical(_window_uint8(image.array), image.affine)
    volumes = [{"name": "image", "base64": _nifti_base64(canonical_image, affine)}]
    layer_info = []
    for layer in layers:
        array = np.asarray(layer.volume.array)
        if array.shape != image.shape:
            raise ValueError(f"label layer '{layer.name}' shape {array.shape} differs from the image's {image.shape}")
        values = {int(v) for v in np.unique(array)} - {0}
        segments = layer.segments or default_segments(values - {layer.hidden_value}, None)
        top = max([*values, *(s.label_value for s in segments), 1])
        dtype = np.uint8 if top < 256 else np.uint16
        shown = np.where(array == layer.hidden_value, 0, array) if layer.hidden_value is not None else array
        volumes.append({"name": layer.name, "base64": _nifti_base64(to_canonical(shown.astype(dtype),
                                                                                 image.affine)[0], affine)})
        layer_info.append({"name": layer.name, "segments": [
            {"value": s.label_value, "name": s.name, "color": [round(c * 255) for c in s.color]}
            for s in segments if s.label_value != layer.hidden_value]})
    data = {"title": title, "shape": list(canonical_image.shape), "volumes": volumes, "layers": layer_info,
            "marks": marks or [], "opacity": opacity, "axis_names": AXIS_NAMES}
    viewer = resources.files("versaseg.viz").joinpath("vendor/niivue.umd.js").read_text(encoding="utf-8")
    payload = json.dumps(data).replace("</", "<\\/")  # no "</script>" inside the inlined JSON
    head, rest = _TEMPLATE.split("@NIIVUE@")
    before, after = rest.split("@DATA@")
    return head.replace("@TITLE@", html.escape(title)) + viewer + before + payload + after


def write_review_page(out: str | Path, image: Volume, layers: list[LabelLayer], title: str,
                      marks: list[dict] | None = None, overwrite: bool = False) -> Path:
    """Write the page atomically; refuses to replace ``out`` unless ``overwrite``."""
    out = check_writable(out, overwrite)
    page = review_page(image, layers, title, marks)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@ - versaseg review</title>
<style>
body { margin: 0; font: 14px system-ui, sans-serif; background: #111; color: #ddd; display: flex; height: 100vh; }
#panel { width: 300px; padding: 10px; overflow-y: auto; box-sizing: border-box; border-right: 1px solid #333; }
#view { flex: 1; position: relative; }
#gl { width: 100%; height: 100%; display: block; }
h1 { font-size: 16px; margin: 0 0 8px; } h2 { font-size: 13px; margin: 12px 0 4px; color: #aaa; }
label { display: block; margin: 3px 0; } input[type=range] { width: 100%; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
.marks button { margin: 2px; padding: 1px 5px; background: #222; color: #ddd; border: 1px solid #555;
  cursor: pointer; font-size: 12px; }
.marks button.judged { border-color: #e6194b; } .marks button.suggested { border-color: #ffe119; }
#status { color: #888; font-size: 12px; margin-top: 8px; }
</style></head>
<body>
<div id="panel">
  <h1>@TITLE@</h1>
  <label>plane <select id="axis"></select></label>
  <label>slice <span id="sliceText"></span><input type="range" id="slice" min="0" max="0" value="0"></label>
  <label>overlay opacity <input type="range" id="opacity" min="0" max="100" value="50"></label>
  <div id="layers"></div>
  <div id="marks" class="marks"></div>
  <div id="status">loading...</div>
</div>
<div id="view"><canvas id="gl"></canvas></div>
<script>@NIIVUE@</script>
<script type="application/json" id="data">@DATA@</script>
<script>
(async function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const status = document.getElementById("status");
  const nv = new niivue.Niivue({ backColor: [0.07, 0.07, 0.07, 1], show3Dcrosshair: true, isResizeCanvas: true,
                                 crosshairColor: [0.9, 0.9, 0.9, 0.6],
                                 logLevel: "error" });
  await nv.attachToCanvas(document.getElementById("gl"));
  nv.setSliceType(nv.sliceTypeMultiplanar);
  const images = [];
  for (const [i, v] of data.volumes.entries()) {
    const image = await niivue.NVImage.loadFromBase64({ base64: v.base64, name: v.name + ".nii.gz",
      colormap: "gray", opacity: i === 0 ? 1 : data.opacity });
    images.push(image);
    nv.addVolume(image);
  }
  const hidden = data.layers.map(() => new Set());
  const layerOn = data.layers.map(() => true);
  function applyColours() {
    data.layers.forEach((layer, l) => {
      const top = Math.max(1, ...layer.segments.map(s => s.value));
      const lut = { R: [], G: [], B: [], A: [], I: [], labels: [] };
      for (let value = 0; value <= top; value++) {
        const s = layer.segments.find(x => x.value === value);
        const on = s && layerOn[l] && !hidden[l].has(value);
        lut.R.push(s ? s.color[0] : 0); lut.G.push(s ? s.color[1] : 0); lut.B.push(s ? s.color[2] : 0);
        lut.A.push(on ? 255 : 0); lut.I.push(value); lut.labels.push(s ? s.name : "");
      }
      images[l + 1].setColormapLabel(lut);
    });
    nv.updateGLVolume();
  }
  applyColours();
  const axis = document.getElementById("axis"), slider = document.getElementById("slice");
  data.axis_names.forEach((name, a) => axis.add(new Option(name, a)));
  axis.value = 2;
  function currentVoxel() { return Array.from(nv.frac2vox(nv.scene.crosshairPos)).map(Math.round); }
  function showSlider() {
    const a = Number(axis.value);
    slider.max = data.shape[a] - 1;
    slider.value = currentVoxel()[a];
    document.getElementById("sliceText").textContent = slider.value + " / " + slider.max;
  }
  function moveTo(a, index) {
    const vox = currentVoxel();
    vox[a] = index;
    nv.scene.crosshairPos = nv.vox2frac(vox);
    nv.drawScene();
    showSlider();
  }
  axis.onchange = showSlider;
  slider.oninput = () => moveTo(Number(axis.value), Number(slider.value));
  nv.onLocationChange = showSlider;
  document.getElementById("opacity").oninput = (e) => {
    for (let i = 1; i < images.length; i++) nv.setOpacity(i, Number(e.target.value) / 100);
  };
  document.getElementById("opacity").value = Math.round(data.opacity * 100);
  const layersDiv = document.getElementById("layers");
  data.layers.forEach((layer, l) => {
    const head = document.createElement("h2");
    const box = document.createElement("input"); box.type = "checkbox"; box.checked = true;
    box.dataset.layer = l;
    box.onchange = () => { layerOn[l] = box.checked; applyColours(); };
    head.append(box, " " + layer.name);
    layersDiv.append(head);
    for (const s of layer.segments) {
      const row = document.createElement("label");
      const check = document.createElement("input"); check.type = "checkbox"; check.checked = true;
      check.dataset.layer = l; check.dataset.value = s.value;
      check.onchange = () => { if (check.checked) hidden[l].delete(s.value); else hidden[l].add(s.value);
                               applyColours(); };
      const swatch = document.createElement("span"); swatch.className = "swatch";
      swatch.style.background = "rgb(" + s.color.join(",") + ")";
      row.append(check, swatch, s.name + " (" + s.value + ")");
      layersDiv.append(row);
    }
  });
  const marksDiv = document.getElementById("marks");
  for (const kind of ["annotated", "judged wrong", "suggested"]) {
    const marks = data.marks.filter(m => m.kind === kind);
    if (!marks.length) continue;
    const head = document.createElement("h2"); head.textContent = kind + " (" + marks.length + ")";
    marksDiv.append(head);
    for (const m of marks) {
      const b = document.createElement("button");
      b.className = kind === "judged wrong" ? "judged" : kind;
      b.textContent = data.axis_names[m.view_axis] + " " + m.slice;
      b.title = "stored axis " + m.axis + ", slice " + m.slice;
      b.onclick = () => { axis.value = m.view_axis; moveTo(m.view_axis, m.view_slice); };
      marksDiv.append(b);
    }
  }
  moveTo(2, Math.floor(data.shape[2] / 2));
  status.textContent = "ready";
  document.body.dataset.ready = "1";
})().catch(e => { document.getElementById("status").textContent = "error: " + e; console.error(e); });
</script>
</body></html>
"""
