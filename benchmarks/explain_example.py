"""The worked example of docs/explain.md: `versaseg explain` of the single-stage basal-ganglia model that
`benchmarks/cascade.py` trains (seed 0), on the first held-out case, against its ground truth.

    python benchmarks/cascade.py --work benchmark_data/cascade        # trains benchmark_data/cascade/single_s0
    python benchmarks/explain_example.py --work benchmark_data/cascade --images docs/images/explain
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import versaseg  # noqa: E402

FIGURES = {"prediction.png": "prediction.png", "cam_pallidum.png": "cam_pallidum.png",
           "layers/02_encoder.2.png": "encoder.2.png", "layers/05_decoder.1.png": "decoder.1.png"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("benchmark_data/cascade"))
    parser.add_argument("--images", type=Path, default=Path("docs/images/explain"))
    args = parser.parse_args()
    run, data = args.work / "single_s0", args.work / "data"
    if not (run / "model.pt").exists():
        raise SystemExit(f"{run} is missing: run benchmarks/cascade.py first")
    label = sorted((data / "labelsTs").glob("*.nii.gz"))[0]
    case = label.name.removesuffix(".nii.gz")
    images = sorted((data / "imagesTs").glob(f"{case}_*.nii.gz"))
    out = args.work / "explain_example"
    seconds = versaseg("explain", str(run), *map(str, images), "--out", str(out), "--label", str(label), "--class",
                       "pallidum", "--overwrite")
    args.images.mkdir(parents=True, exist_ok=True)
    for source, target in FIGURES.items():
        shutil.copyfile(out / source, args.images / target)
    print(f"explain of {case}: {seconds:.0f} s; figures copied to {args.images}")


if __name__ == "__main__":
    main()
