"""Screenshots of the review page for docs/completion.md: one synthetic brain, every 16th axial slice (30 % of them
corrupted) saved as a Slicer segmentation (named segments and an "ignore" segment for the unannotated voxels),
completed with ``versaseg complete --suggest 2 --view``, the page opened in headless Chromium.

    python benchmarks/review_screenshot.py      # writes docs/images/review_page*.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from annotation_loop import start_annotation  # noqa: E402
from completion import CLASSES, IGNORE, synthetic_cases  # noqa: E402

from versaseg.io.image import read_volume, write_volume  # noqa: E402
from versaseg.io.segmentation import default_segments  # noqa: E402

OUT = Path("docs/images")


def main() -> None:
    from playwright.sync_api import sync_playwright

    case = synthetic_cases(Path("benchmark_data/completion"), 1)[0]
    truth_nii = nib.load(case["label"])
    sparse = start_annotation(np.asarray(truth_nii.dataobj).astype(np.int16), case["name"], 0.3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        segments = default_segments([*CLASSES, IGNORE], CLASSES, ignore_label=IGNORE)
        write_volume(tmp / "sparse.seg.nrrd", sparse.astype(np.uint8), read_volume(case["label"]), segments=segments)
        done = subprocess.run([str(Path(sys.executable).parent / "versaseg"), "complete", str(case["images"][0]),
                               *map(str, case["images"][1:]), "--label", str(tmp / "sparse.seg.nrrd"),
                               "--out", str(tmp / "dense.seg.nrrd"), "--suggest", "2",
                               "--view", str(tmp / "review.html")], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        print(done.stdout.strip())
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto((tmp / "review.html").as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(OUT / "review_page.png"))
            page.uncheck("h2 input[data-layer='0']")  # hide the sparse input: the completion alone
            page.locator("button.suggested").first.click()  # jump to the first suggested slice
            page.wait_for_timeout(500)
            page.screenshot(path=str(OUT / "review_page_suggested.png"))
            browser.close()
    print(f"wrote {OUT / 'review_page.png'} and {OUT / 'review_page_suggested.png'}")


if __name__ == "__main__":
    main()
