"""The review page: its content (volumes, segments, marks) and, in a real headless Chromium, that it renders."""

from __future__ import annotations

import base64
import gzip
import io
import json
import re
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from versaseg.io.image import Volume, write_volume
from versaseg.io.segmentation import Segment
from versaseg.viz.review_page import LabelLayer, completion_marks, review_page, write_review_page

# a stored orientation that is not RAS: i -> -x (flipped), j -> z, k -> y
AFFINE = np.array([[-1.5, 0, 0, 40.0], [0, 0, 2.0, -30.0], [0, 1.2, 0, 10.0], [0, 0, 0, 1]])
SHAPE = (30, 24, 28)
RED = Segment(1, "lesion", (1.0, 0.0, 0.0), "Segment_1")


def _scene():
    grid = np.indices(SHAPE)
    ball = ((grid - np.array([15, 12, 14])[:, None, None, None]) ** 2).sum(0) < 49
    image = 100 + 80 * ball + np.random.default_rng(0).normal(0, 5, SHAPE)
    return Volume(image.astype(np.float32), AFFINE), Volume(ball.astype(np.uint8), AFFINE)


def _data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1))


def _decode(entry: dict) -> nib.Nifti1Image:
    raw = gzip.decompress(base64.b64decode(entry["base64"]))
    return nib.Nifti1Image.from_bytes(raw)


def test_page_holds_the_viewer_the_volumes_in_ras_and_the_segments():
    image, label = _scene()
    page = review_page(image, [LabelLayer("completion", label, (RED,))], "case 1")
    assert "niivue" in page and "<title>case 1 - versaseg review</title>" in page
    data = _data(page)
    assert [v["name"] for v in data["volumes"]] == ["image", "completion"]
    decoded = _decode(data["volumes"][1])
    assert nib.aff2axcodes(decoded.affine) == ("R", "A", "S")  # canonical voxel order for the viewer
    canonical = nib.as_closest_canonical(nib.Nifti1Image(label.array, AFFINE))
    np.testing.assert_array_equal(np.asarray(decoded.dataobj), np.asarray(canonical.dataobj))
    np.testing.assert_allclose(decoded.affine, canonical.affine, atol=1e-5)
    assert data["layers"] == [{"name": "completion", "segments": [{"value": 1, "name": "lesion",
                                                                    "color": [255, 0, 0]}]}]
    windowed = np.asarray(_decode(data["volumes"][0]).dataobj)
    assert windowed.dtype == np.uint8 and windowed.max() == 255 and windowed.min() == 0


def test_ignore_value_is_not_drawn_and_marks_map_stored_slices_to_the_view():
    image, label = _scene()
    sparse = np.full(SHAPE, 9, np.uint8)
    sparse[:, :, [5, 20]] = label.array[:, :, [5, 20]]
    page = review_page(image, [LabelLayer("input", Volume(sparse, AFFINE), None, 9)], "sparse")
    drawn = np.asarray(_decode(_data(page)["volumes"][1]).dataobj)
    assert 9 not in drawn and [s["name"] for s in _data(page)["layers"][0]["segments"]] == ["Segment_1"]
    report = {"annotation_axis": 0, "annotated_slices": [3, 26], "slices_judged_wrong": [{"slice": 26}],
              "suggested": [{"axis": 2, "slice": 7}]}
    marks = completion_marks(report, image)
    # stored axis 0 is canonical x, flipped (size 30): slice 3 -> 26; stored axis 2 is canonical y, not flipped
    assert [(m["kind"], m["view_axis"], m["view_slice"]) for m in marks] == [
        ("annotated", 0, 26), ("annotated", 0, 3), ("judged wrong", 0, 3), ("suggested", 1, 7)]


def test_write_refuses_to_overwrite_and_rejects_a_mismatched_layer(tmp_path):
    image, label = _scene()
    out = write_review_page(tmp_path / "page.html", image, [LabelLayer("l", label)], "t")
    with pytest.raises(Exception, match="overwrite"):
        write_review_page(out, image, [LabelLayer("l", label)], "t")
    with pytest.raises(ValueError, match="shape"):
        review_page(image, [LabelLayer("bad", Volume(np.zeros((3, 3, 3), np.uint8), AFFINE))], "t")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "versaseg.cli.main", "view", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", errors="replace")


def test_view_cli_writes_the_page_and_reports_bad_input(tmp_path):
    image, label = _scene()
    write_volume(tmp_path / "image.nii.gz", image.array, image)
    write_volume(tmp_path / "label.seg.nrrd", label.array, label, segments=(RED,))
    done = _cli(tmp_path / "image.nii.gz", tmp_path / "label.seg.nrrd", "--out", tmp_path / "page.html")
    assert done.returncode == 0, done.stderr
    assert _data((tmp_path / "page.html").read_text(encoding="utf-8"))["layers"][0]["segments"][0]["name"] == "lesion"
    bad = _cli(tmp_path / "image.nii.gz", tmp_path / "label.seg.nrrd", "--names", "a,b", "--out",
               tmp_path / "other.html")
    assert bad.returncode == 2 and "--names" in bad.stderr and not (tmp_path / "other.html").exists()
    missing = _cli(tmp_path / "image.nii.gz", tmp_path / "nope.nii.gz", "--out", tmp_path / "other.html")
    assert missing.returncode == 2 and "nope.nii.gz" in missing.stderr


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium installed (apt-get install chromium; .ci/run installs it)")


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_page_renders_in_headless_chromium(tmp_path):
    browser = _browser()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e .[dev])")
    image, label = _scene()
    page_path = write_review_page(tmp_path / "page.html", image, [LabelLayer("completion", label, (RED,))], "t")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=browser, args=[
            "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist", "--no-sandbox"])
        try:
            page = chromium.new_page(viewport={"width": 1000, "height": 700})
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_path.as_uri())  # a file: nothing is fetched from a server
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            page.fill("#opacity", "100")
            page.dispatch_event("#opacity", "input")
            page.wait_for_timeout(300)
            first = _pixels(page.locator("#gl").screenshot())
            page.select_option("#axis", "0")
            page.fill("#slice", "2")  # a sagittal slice outside the ball
            page.dispatch_event("#slice", "input")
            page.wait_for_timeout(300)
            moved = _pixels(page.locator("#gl").screenshot())
            page.uncheck("input[data-layer='0'][data-value='1']")
            page.wait_for_timeout(300)
            hidden = _pixels(page.locator("#gl").screenshot())
        finally:
            chromium.close()
    assert errors == []
    assert first.std() > 10  # not blank

    def red(pixels):
        return int(np.sum((pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)))

    assert red(first) > 500  # the overlay colour is on screen
    assert np.mean(np.any(first != moved, axis=-1)) > 0.01  # the slider changed the picture
    assert red(hidden) < red(moved) / 4  # hiding the segment removes its colour
