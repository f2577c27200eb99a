"""The pieces of benchmarks/reproduce.py that decide verdicts: Holm's correction, the paired test, the plateau rule,
the validation-curve reader and the resumable JSON-lines store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "reproduction"))
import common  # noqa: E402
import stats  # noqa: E402


def test_holm_matches_the_step_down_procedure():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept monotone at 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.2, None, 0.9]) == pytest.approx([0.4, None, 0.9])  # None is not in the family
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def test_paired_reports_the_median_difference_and_scipys_p():
    rng = np.random.default_rng(0)
    a = {f"c{i}": float(v) for i, v in enumerate(rng.random(9))}
    b = {k: v + 0.05 + 0.01 * i for i, (k, v) in enumerate(a.items())}
    b["only_b"] = 1.0
    a["nan_case"], b["nan_case"] = float("nan"), 0.5
    test = stats.paired(a, b)
    keys = [f"c{i}" for i in range(9)]
    assert test["n"] == 9
    assert test["median_diff"] == pytest.approx(0.09)
    assert test["p"] == pytest.approx(scipy_stats.wilcoxon([b[k] for k in keys], [a[k] for k in keys]).pvalue)
    assert stats.verdict(test, test["p"]) == "holds"
    assert stats.verdict(stats.paired(b, a), test["p"]) == "reversed"
    assert stats.verdict(test, 0.2) == "not significant"
    assert stats.paired({"x": 1.0}, {"x": 1.0})["p"] is None


def test_plateau_rule():
    rising = list(np.linspace(0.5, 0.9, 40))
    assert not common.plateau(rising)["plateaued"]  # still gaining 0.08 per fifth
    flat = [0.9 + 0.003 * ((-1) ** i) for i in range(40)]
    verdict = common.plateau(flat)
    assert verdict["plateaued"] and verdict["window"] == 8 and abs(verdict["gain"]) < 0.01
    assert common.plateau([0.1, 0.2, 0.3, 0.4, 0.5])["gain"] is None  # shorter than two windows of 3


def test_read_curve_keeps_only_validated_epochs(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,lr,val_dice_mean,val_dice_a,val_seconds\n"
        "1,1.0,0.1,0.5,0.5,1\n2,0.9,0.1,,,\n3,0.8,0.1,0.7,0.7,1\n")
    curve = common.read_curve(tmp_path)
    assert curve == {"epoch": [1, 3], "train_loss": [1.0, 0.8], "val_dice_mean": [0.5, 0.7], "val_dice_a": [0.5, 0.7]}


def test_store_resumes_past_a_line_cut_by_a_kill(tmp_path):
    store = common.Store(tmp_path / "runs.jsonl")
    store.append({"key": "x|1", "value": 1})
    with open(store.path, "a") as stream:
        stream.write('{"key": "x|2", "val')  # a kill in the middle of a write
    assert store.keys() == {"x|1"}
    store.append({"key": "x|3", "value": 3})
    rows = store.rows()
    assert [r["key"] for r in rows] == ["x|1", "x|3"]
    assert rows[1]["commit"] and rows[1]["machine"] and rows[1]["date"]
    assert json.loads(store.path.read_text().splitlines()[-1])["value"] == 3


def _sparse_dataset(root: Path) -> Path:
    """A 2-case dataset whose training labels keep axial slices 1 and 5 of 7 (the rest hold the ignore label 9)."""
    import nibabel as nib

    for folder in ("imagesTr", "labelsTr", "imagesTs", "labelsTs"):
        (root / folder).mkdir(parents=True)
    for case in ("synth_000", "synth_001"):
        image = np.random.default_rng(0).random((6, 6, 7)).astype(np.float32)
        nib.save(nib.Nifti1Image(image, np.eye(4)), root / "imagesTr" / f"{case}_0000.nii.gz")
        label = np.full((6, 6, 7), 9, np.uint8)
        label[..., 1], label[..., 5] = 1, 2
        nib.save(nib.Nifti1Image(label, np.eye(4)), root / "labelsTr" / f"{case}.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "a": 1, "b": 2, "ignore": 9},
                                                   "versaseg_degrade": {"every": 4}}))
    return root


def test_nearest_filled_copies_the_nearest_kept_slice_and_drops_the_ignore_label(tmp_path):
    import nibabel as nib
    import studies

    out = studies.nearest_filled(_sparse_dataset(tmp_path / "sparse"), tmp_path / "nearest")
    dense = np.asarray(nib.load(out / "labelsTr" / "synth_000.nii.gz").dataobj)
    assert [int(dense[0, 0, z]) for z in range(7)] == [1, 1, 1, 1, 2, 2, 2]  # slice 3 ties: the lower slice wins
    assert json.loads((out / "dataset.json").read_text())["labels"] == {"background": 0, "a": 1, "b": 2}
    assert (out / "imagesTr" / "synth_001_0000.nii.gz").exists() and (out / "labelsTs").is_dir()


def test_completed_keeps_finished_cases_and_reads_seconds_from_the_reports(tmp_path, monkeypatch):
    import studies

    sparse = _sparse_dataset(tmp_path / "sparse")
    out = tmp_path / "completed"
    calls = []

    def fake_complete(*args: str) -> float:  # stands in for `versaseg complete ... --out T --report R`
        calls.append(args)
        target, report = Path(args[args.index("--out") + 1]), Path(args[args.index("--report") + 1])
        assert args[args.index("--ignore-label") + 1] == "9" and not (out / "dataset.json").exists()
        target.write_bytes(b"label")
        report.write_text(json.dumps({"seconds": 12.5}))
        return 14.0

    monkeypatch.setattr(studies, "step", fake_complete)
    (out / "labelsTr").mkdir(parents=True)
    (out / "labelsTr" / "synth_000.nii.gz").write_bytes(b"done before a kill")
    (out / "synth_000_report.json").write_text(json.dumps({"seconds": 11.0}))
    dataset, seconds = studies.completed(sparse, out)
    assert [a[0] for a in calls] == ["complete"] and "synth_001.nii.gz" in calls[0][calls[0].index("--out") + 1]
    assert seconds == {"synth_000": 11.0, "synth_001": 12.5}
    assert json.loads((dataset / "dataset.json").read_text())["labels"] == {"background": 0, "a": 1, "b": 2}


def _loss_row(loss: str, seed: int, dice: list[float]) -> dict:
    return {"task": "binary", "arm": loss, "seed": seed, "curve": {"val_dice_mean": [0.1, 0.5, 0.6, 0.6]},
            "cases": {f"case{i}": {"vessels": {"dice": d}, "mean foreground": {"dice": d}} for i, d in enumerate(dice)}}


def test_stability_check_tests_the_seed_spread_per_case_and_reads_focal_steadier_as_holds():
    import claims_report

    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, 10)
    rows = []
    for seed in (0, 1, 2):
        rows.append(_loss_row("ce", seed, list(base + rng.normal(0, 0.05, 10))))  # seed-dependent
        rows.append(_loss_row("ce_focal", seed, list(base + 0.001 * seed)))  # nearly the same every seed
    for seed in (0, 1):  # the other pair is not complete: it is left out, and the verdict says so
        rows += [_loss_row("dice", seed, list(base)), _loss_row("dice_focal", seed, list(base))]
    spread = claims_report.seed_spread([r for r in rows if r["arm"] == "ce_focal"])
    assert spread["case0"] == pytest.approx(np.std([0.0, 0.001, 0.002]), abs=1e-9)
    lines, verdict = claims_report._e_stability(rows)
    assert verdict == "stabilising: ce_focal: holds (pending the other pair)"
    assert any("spread of `ce` minus spread of `ce_focal`" in line and "10 cases" in line for line in lines)
    flipped = [{**r, "arm": {"ce": "ce_focal", "ce_focal": "ce"}.get(r["arm"], r["arm"])} for r in rows]
    assert claims_report._e_stability(flipped)[1].startswith("stabilising: ce_focal: reversed")


def test_vessel_separability_reads_bright_dark_and_uninformative_channels(tmp_path):
    import nibabel as nib
    import studies

    data, augmented = tmp_path / "data", tmp_path / "augmented"
    for folder in (data / "imagesTs", data / "labelsTs", augmented / "imagesTs"):
        folder.mkdir(parents=True)
    labels = np.ones((12, 12, 6), np.uint8)
    labels[5:7, :, :] = studies.VESSELS  # a tube of vessel voxels inside the brain
    rng = np.random.default_rng(0)
    vessel = labels == studies.VESSELS
    channels = {(data, 1): np.where(vessel, 0.0, 1.0),  # T2: flow voids
                (data, 2): np.where(vessel, 1.0, 0.0),  # TOF: bright vessels
                (augmented, 3): rng.random(labels.shape)}  # a generator that learned nothing
    for (folder, channel), image in channels.items():
        nib.save(nib.Nifti1Image(image.astype(np.float32), np.eye(4)), folder / "imagesTs" / f"c_{channel:04d}.nii.gz")
    nib.save(nib.Nifti1Image(labels, np.eye(4)), data / "labelsTs" / "c.nii.gz")
    auc = studies.vessel_separability(data, augmented)["c"]
    assert auc["T2"] == 0.0 and auc["TOF"] == 1.0
    assert 0.35 < auc["synthetic TOF"] < 0.65
    assert auc["core_fraction"] == 0.0  # a 2-voxel-thick tube has no voxel surrounded by vessel on all 6 sides


def test_against_claimed_names_only_losses_significantly_better_after_holm():
    import claims_report

    base = np.linspace(0.5, 0.8, 10)
    arms = {"dice_focal": _loss_row("dice_focal", 0, list(base)),
            "ce": _loss_row("ce", 0, list(base + np.linspace(0.01, 0.05, 10))),  # better on every case
            "dice": _loss_row("dice", 0, list(base + np.tile([0.02, -0.02], 5)))}  # no better
    result = claims_report._against_claimed(arms, "dice_focal")
    assert [name for _, name in result] == ["ce", ""]
    assert "Holm-adjusted p = 0.0039" in result[0][0]  # 2 x 0.00195 (10 positive differences)


def test_claim_f_budget_is_read_from_the_key_as_total_epochs():
    import claims_report

    assert claims_report._f_budget("f|single|E90|seed0") == 90
    assert claims_report._f_budget("f|cascade|E45+45|seed0") == 90


def test_roi_coverage_measures_the_share_inside_the_box_and_the_room_to_its_faces(tmp_path):
    import nibabel as nib
    import studies

    (tmp_path / "labelsTs").mkdir()
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "a": 1, "b": 2}}))
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[5:8, 5:8, 5:8] = 1  # inside the box: 3 voxels from its low x and z faces
    labels[14:18, 5:8, 5:8] = 2  # half of it (x 14, 15) inside a box that stops at x = 16
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "labelsTs" / "c.nii.gz")
    rois = [{"case": "c", "roi_start": [2, 0, 2], "roi_stop": [16, 20, 12]}]
    out = studies.roi_coverage(tmp_path, rois)["c"]
    assert out["a"] == {"coverage": 1.0, "margin_voxels": 3}  # x 5 - 2; y spans the volume: no face there
    assert out["b"]["coverage"] == pytest.approx(0.5)
    assert out["b"]["margin_voxels"] == 15 - 17  # the structure crosses the x face by 2 voxels


def test_claim_f_coverage_lifts_the_provisional_mark_only_when_every_box_holds_every_structure():
    import claims_report

    full = {"c1": {"a": {"coverage": 1.0, "margin_voxels": 6}}, "c2": {"a": {"coverage": 1.0, "margin_voxels": 4}}}
    row = {"key": "f|roi-coverage|E45+45", "arm": "roi coverage", "epochs": 90, "coverage": full}
    lines, localised = claims_report._f_coverage([row], 90)
    assert localised and "2 of 2 held-out cases" in lines[0] and "at least 4 voxels" in lines[0]
    cut = {**full, "c2": {"a": {"coverage": 0.9, "margin_voxels": -1}}}
    lines, localised = claims_report._f_coverage([{**row, "coverage": cut}], 90)
    assert not localised and "1 of 2" in lines[0] and "a of c2, 90.0 % inside" in lines[0]
    assert claims_report._f_coverage([row], 60) == (
        ["- Stage 1's boxes: coverage of the true structures not measured yet (`f|roi-coverage` pending)."], False)


def test_cleansing_holds_only_when_it_raises_the_dice_significantly_and_repairs_slices():
    import claims_report

    better = {"p": 0.01, "median_diff": 0.02}
    assert claims_report._cleanse_verdict(better, 5, 61) == (
        "; **cleansing holds**: it repairs 5 of the 61 corrupted slices")
    assert "does not hold**: it repairs none of the" in claims_report._cleanse_verdict(better, 0, 61)
    assert "does not hold**: it repairs 5 of the 61" in claims_report._cleanse_verdict({**better, "p": 0.2}, 5, 61)
    assert "does not hold" in claims_report._cleanse_verdict({"p": 0.016, "median_diff": -0.005}, 3, 61)
    assert claims_report._cleanse_verdict(None, None, 0) == ""


def test_why_e_counts_the_losses_the_data_cannot_tell_from_the_best_and_names_the_weakest_class():
    import claims_report

    base = np.linspace(0.6, 0.9, 12)

    def row(loss, vessels, brainstem):
        return {"arm": loss, "cases": {f"case{i}": {"vessels": {"dice": v}, "brainstem": {"dice": b}}
                                       for i, (v, b) in enumerate(zip(vessels, brainstem, strict=True))}}

    arms = {"ce_dtm": row("ce_dtm", base, base),
            "dice": row("dice", base + 0.05, base + 0.05),  # the best, on every case
            "ce": row("ce", base + 0.05 + np.tile([0.001, -0.001], 6), base + 0.05),  # no different from it
            "ce_focal": row("ce_focal", base + 0.049, base - 0.2)}  # worse, most on the brainstem
    text = claims_report._why_e("multiclass", arms, "ce_dtm", "dice")
    assert "1 of the 3 others are not significantly worse than the best, `dice`" in text  # ce only
    assert "`ce_dtm` reaches 0.750, -0.050 on vessels" in text  # both classes 0.05 behind: the first is named
    assert "within 0.02 Dice" not in text


def test_d_artefacts_reports_where_the_blob_sits_and_how_little_t2_explains_it():
    import claims_report

    def case(centre, t2, size=500):
        return {"synthetic": 1000, "real": 10, "largest": size, "centre": centre, "real_median": -0.5,
                "t2_percentile_median": t2}

    row = {"key": "d|artefacts|low4|E40x50", "arm": "artefacts low4", "setting": "low4",
           "cases": {"a": case([10, 30, 40], 5.0), "b": case([12, 35, 44], 95.0, 900), "c": {"synthetic": 0,
                                                                                          "real": 0}}}
    (line, blank) = claims_report._d_artefacts([row])
    assert blank == ""
    assert "in 2 of 3 held-out cases" in line and "500-900 voxels" in line
    assert "x 10-12, y 30-35, z 40-44" in line and "percentile of the brain's 5 to 95" in line
    assert claims_report._d_artefacts([{**row, "cases": {"c": {"synthetic": 0, "real": 0}}}]) == []


def test_why_c_names_each_rivals_gap_its_weakest_class_and_whether_weak_labels_widen_it():
    import claims_report

    base = np.linspace(0.6, 0.9, 8)

    def row(vessels, brainstem):
        return {"cases": {f"case{i}": {"vessels": {"dice": v}, "brainstem": {"dice": b}, "mean": {"dice": 0.0}}
                          for i, (v, b) in enumerate(zip(vessels, brainstem, strict=True))}}

    regimes = {"weak": {"unet": row(base, base), "frrn": row(base - 0.1, base),
                        "unet-frrn": row(base - 0.04, base + 0.02)},  # behind U-Net on vessels, ahead on brainstem
               "full": {"unet": row(base, base), "frrn": row(base, base), "unet-frrn": row(base, base + 0.02)}}
    names = [f"{r} labels: unet-frrn minus {o}" for r in ("weak", "full") for o in ("unet", "frrn")]
    text = claims_report._why_c(regimes, names, ["not significant", "holds", "not significant", "holds"])
    assert ("Weak labels against unet (not significant): -0.010 mean Dice, ahead in 0 of 8 cases; furthest behind "
            "on vessels (-0.040), furthest ahead on brainstem (+0.020)") in text
    assert "full labels against frrn (holds): +0.010 mean Dice, ahead in 8 of 8 cases" in text
    # weak vs full: -0.010 vs +0.010 against U-Net, +0.040 vs +0.010 against FRRN
    assert "against unet -0.010 and +0.010 (smaller with weak labels); against frrn +0.040 and +0.010 (larger" in text
    assert "it grows with weak labels only against frrn." in text
    # full minus weak per network: U-Net 0, FRRN 0.05, hybrid 0.02 -> not all below 0.02, so no 'little left' remark
    assert "Against full labels, weak labels cost unet 0.000, frrn 0.050, unet-frrn 0.020 mean Dice." in text
    regimes["full"] = {n: {"cases": {k: {c: {"dice": v["dice"] + 0.01} for c, v in per.items()}
                                     for k, per in r["cases"].items()}} for n, r in regimes["weak"].items()}
    assert "leaves little for any skip design to recover" in claims_report._why_c(regimes, names, ["holds"] * 4)


def test_c_verdict_groups_the_tests_by_study_and_names_those_that_hold():
    import claims_report

    names = [f"{r} labels: unet-frrn minus {o}" for r in ("weak", "full") for o in ("unet", "frrn")]
    names += [f"completion K = {k}: unet-frrn minus {o}" for k in (4, 16) for o in ("unet", "frrn")]
    verdicts = ["not significant", "reversed", "not significant", "not significant",
                "holds", "not significant", "holds", "holds"]
    assert claims_report._c_verdict_by_study(names, verdicts) == (
        "segmentation: 0 of 4 hold; weak labels vs frrn: reversed; "
        "completion: 3 of 4 hold (K = 4 vs unet, K = 16 vs unet, K = 16 vs frrn)")
    regimes = {"weak": {"unet": {"cases": {"a": {"x": {"dice": 0.5}}, "b": {"x": {"dice": 0.6}}}},
                        "unet-frrn": {"cases": {"a": {"x": {"dice": 0.6}}, "b": {"x": {"dice": 0.6}}}}}}
    assert claims_report._why_c(regimes, names[:1], ["holds"]).startswith("**Why it holds only in part.**")
    assert claims_report._why_c(regimes, names[:1], ["reversed"]).startswith("**Why it does not hold as stated.**")


def test_c_completion_sets_the_default_voxel_model_beside_the_networks_on_the_same_runs():
    import claims_report

    def row(method, case, dice, seconds, every=16, noise=0.3):
        return {"method": method, "case": case, "axis": 0, "every": every, "noise": noise, "seconds": seconds,
                "dice": {c: dice for c in ("1", "2", "3", "4")}}

    cases = ("a", "b", "c")
    runs = [row(n, k, d + i * 0.01, t) for n, d, t in (("unet", 0.6, 100), ("frrn", 0.7, 300), ("unet-frrn", 0.8, 200))
            for i, k in enumerate(cases)]
    reference = [row("versaseg", k, 0.75, 20) for k in cases] + [row("versaseg", "a", 0.1, 1, noise=0.0),
                                                                  row("itk", "a", 0.1, 1)]
    family, names = [], []
    lines = claims_report._c_completion(runs, claims_report._c_completion_scores(runs), family, names, reference)
    table = next(line for line in lines if line.startswith("| 16 |"))
    assert table.endswith("| 3 / 3 / 3 | 100 / 300 / 200 | 0.750 ± 0.000 (20 s, 3 runs) |")
    # hybrid 0.80, 0.81, 0.82 against 0.75: +0.060, ahead in 3 of 3, 200 s / 20 s
    assert "K = 16: +0.060 mean Dice, ahead in 3 of 3 runs, 10x the time." in "\n".join(lines)
    assert names == ["completion K = 16: unet-frrn minus unet", "completion K = 16: unet-frrn minus frrn"]


def test_c_completion_is_provisional_until_every_network_stops_gaining_at_3x_the_iterations():
    import claims_report

    def row(method, axis, dice):
        return {"method": method, "case": "a", "axis": axis, "every": 16, "noise": 0.3, "seconds": 1.0,
                "dice": {c: dice for c in ("1", "2", "3", "4")}}

    long = "versaseg:model=cnn;network={};iterations=360"
    runs = [row(n, axis, 0.7) for n in ("unet", "frrn", "unet-frrn") for axis in (0, 1)]
    runs += [row(long.format("unet"), 0, 0.8), row(long.format("unet"), 1, 0.75)]  # +0.1, +0.05
    runs += [row(long.format("unet-frrn"), 0, 0.705)]  # +0.005: below the plateau rule's 0.01
    gains = claims_report.c_budget_gains(runs)
    assert gains["unet"] == pytest.approx(0.075) and gains["unet-frrn"] == pytest.approx(0.005)
    assert gains["frrn"] is None
    lines = "\n".join(claims_report._c_completion(runs, claims_report._c_completion_scores(runs), [], []))
    assert "| unet | 0.700 | 0.775 | +0.075 | 2 |" in lines and "| unet-frrn | 0.700 | 0.705 | +0.005 | 1 |" in lines
    assert "unet at 3x the iterations +0.075 against the hybrid at the default (2 runs)." in lines
    # equal 3x budget, on the one run both have: hybrid 0.705 against U-Net 0.8
    assert "At an equal 3x budget (descriptive: one case): hybrid minus unet -0.095, ahead in 0 of 1 runs." in lines
    assert claims_report._c_completion_unconverged(runs) == (
        " (provisional: completion at K = 16 still gains at 3x the iterations (unet +0.075); "
        "budget check not run for frrn)")
    runs = [r for r in runs if "network=unet;" not in r["method"]] + [row(long.format("frrn"), 0, 0.7)]
    assert claims_report._c_completion_unconverged(runs) == " (provisional: budget check not run for unet)"
    runs.append(row(long.format("unet"), 0, 0.709))
    assert claims_report._c_completion_unconverged(runs) == ""


def test_why_c_completion_compares_the_hybrid_per_k_and_says_whether_sparser_annotation_widens_its_lead():
    import claims_report

    runs = [f"synth_00{c}|{a}" for c in (1, 2, 3) for a in (0, 1, 2)]
    unet = {k: 0.90 for k in runs}
    completion = {4: {"unet": unet, "frrn": {k: 0.92 for k in runs},
                      "unet-frrn": {k: 0.91 + (0.001 if i < 6 else -0.001) for i, k in enumerate(runs)}},
                  16: {"unet": {k: 0.70 for k in runs}, "frrn": {k: 0.72 for k in runs},
                       "unet-frrn": {k: 0.75 for k in runs[:5]}}}  # only 5 of 9 hybrid runs so far
    word = {"completion K = 4: unet-frrn minus unet": "holds"}
    text = claims_report._why_c_completion(completion, word)
    # K = 4: +0.010 - 0.001/3 against U-Net, ahead in all 9; against FRRN behind in all 9
    assert "at K = 4 against unet (holds) +0.010 mean Dice, ahead in 9 of 9 runs" in text
    assert "at K = 4 against frrn (not tested) -0.010 mean Dice, ahead in 0 of 9 runs" in text
    assert "at K = 16 against unet (not tested) +0.050 mean Dice, ahead in 5 of 5 runs" in text  # paired runs only
    assert ("From K = 4 to the sparser K = 16: against unet +0.010 and +0.050 (larger); "
            "against frrn -0.010 and +0.030 (larger)") in text
    assert text.endswith("the advantage grows as the annotation thins, as claimed.")
    completion[16]["unet-frrn"] = {k: 0.705 for k in runs}  # the lead over U-Net shrinks, the gap to FRRN widens
    text = claims_report._why_c_completion(completion, word)
    assert "against unet +0.010 and +0.005 (smaller); against frrn -0.010 and -0.015 (smaller)" in text
    assert text.endswith("the advantage does not grow as the annotation thins.")
    completion[16]["unet-frrn"] = {k: 0.709 for k in runs}  # +0.009 vs U-Net (same), -0.011 vs FRRN (same)
    assert "(about the same)" in claims_report._why_c_completion(completion, word)
    assert claims_report._why_c_completion({4: {"unet": unet, "frrn": {}, "unet-frrn": {}}}, word) == ""
