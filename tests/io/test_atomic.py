"""Atomic writes: outputs are renamed into place, never half-written, never overwritten without --overwrite."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from versaseg.errors import InputError
from versaseg.io import image as image_module
from versaseg.io.atomic import atomic_path, check_writable, replace_folder, write_text_atomic
from versaseg.io.image import Volume, read_volume, write_volume

SHAPE = (8, 9, 10)


def _reference(tmp_path: Path) -> Volume:
    affine = np.diag([0.9, 1.1, 2.0, 1.0])
    affine[:3, 3] = (-5.0, 3.0, 7.0)
    src = tmp_path / "in" / "img.nii.gz"
    src.parent.mkdir()
    nib.save(nib.Nifti1Image(np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE), affine), str(src))
    return read_volume(src)


def _listing(folder: Path) -> list[str]:
    """Every entry below ``folder`` (hidden ones included), relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("ending", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_write_volume_refuses_to_overwrite(tmp_path, ending):
    ref = _reference(tmp_path)
    out = tmp_path / "out" / f"pred{ending}"
    first = np.ones(SHAPE, np.uint8)
    assert write_volume(out, first, ref) == out
    before = out.read_bytes()

    with pytest.raises(InputError, match="--overwrite") as info:
        write_volume(out, np.zeros(SHAPE, np.uint8), ref)
    assert str(out) in str(info.value)
    assert info.value.path == out
    assert out.read_bytes() == before  # the old file is intact
    np.testing.assert_array_equal(read_volume(out).array, first)

    write_volume(out, np.full(SHAPE, 2, np.uint8), ref, overwrite=True)
    np.testing.assert_array_equal(read_volume(out).array, np.full(SHAPE, 2))
    assert _listing(out.parent) == [out.name]


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        (".nii.gz", ["pred.nii.gz"]),
        (".nii", ["pred.nii"]),
        (".nrrd", ["pred.nrrd"]),
        (".mha", ["pred.mha"]),
        (".mhd", ["pred.mhd", "pred.zraw"]),  # MetaImage header + its data file
        (".nhdr", ["pred.nhdr", "pred.raw.gz"]),  # detached NRRD header + its data file
    ],
)
def test_no_temporary_files_after_success(tmp_path, ending, expected):
    ref = _reference(tmp_path)
    out_dir = tmp_path / "out"
    label = (np.arange(np.prod(SHAPE)).reshape(SHAPE) % 3).astype(np.uint8)
    write_volume(out_dir / f"pred{ending}", label, ref)
    assert _listing(out_dir) == expected
    np.testing.assert_array_equal(read_volume(out_dir / f"pred{ending}").array, label)
    # a second write with overwrite also leaves nothing behind
    write_volume(out_dir / f"pred{ending}", label[::-1].copy(), ref, overwrite=True)
    assert _listing(out_dir) == expected
    np.testing.assert_array_equal(read_volume(out_dir / f"pred{ending}").array, label[::-1])


def test_detached_headers_name_their_final_data_file(tmp_path):
    """The companion data file of .mhd/.nhdr is referenced by its final name, not a temporary one."""
    ref = _reference(tmp_path)
    write_volume(tmp_path / "out" / "pred.mhd", np.ones(SHAPE, np.uint8), ref)
    write_volume(tmp_path / "out" / "pred.nhdr", np.ones(SHAPE, np.uint8), ref)
    assert "ElementDataFile = pred.zraw" in (tmp_path / "out" / "pred.mhd").read_text()
    assert "data file: pred.raw.gz" in (tmp_path / "out" / "pred.nhdr").read_text()
    # still readable after the folder moves
    moved = tmp_path / "moved"
    (tmp_path / "out").rename(moved)
    assert sitk.ReadImage(str(moved / "pred.mhd")).GetSize() == SHAPE


def test_no_temporary_files_after_an_exception(tmp_path):
    target = tmp_path / "out" / "pred.nii.gz"
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            assert tmp != target
            assert tmp.name == target.name  # same name (and suffixes) as the target
            tmp.write_bytes(b"half a file")
            (tmp.parent / "pred.zraw").write_bytes(b"companion")
            raise RuntimeError("killed")
    assert not target.exists()
    assert _listing(target.parent) == []


def test_exception_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new but broken")
            raise ValueError("boom")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["model.pt"]


def test_writer_failure_inside_write_volume(tmp_path, monkeypatch):
    """A writer that dies half way leaves neither a partial output nor temporary files."""
    ref = _reference(tmp_path)
    out = tmp_path / "out" / "pred.nii.gz"
    out.parent.mkdir()
    out.write_bytes(b"previous output")

    def broken_writer(path, array, like):
        Path(path).write_bytes(b"\x1f\x8b partial")
        raise OSError("disk full")

    monkeypatch.setattr(image_module, "_write_nifti", broken_writer)
    with pytest.raises(OSError, match="disk full"):
        write_volume(out, np.ones(SHAPE, np.uint8), ref, overwrite=True)
    assert out.read_bytes() == b"previous output"
    assert _listing(out.parent) == ["pred.nii.gz"]


def test_atomic_path_success_and_empty_block(tmp_path):
    target = tmp_path / "deep" / "er" / "file.json"
    with atomic_path(target) as tmp:
        assert tmp.exists()  # an empty placeholder, like tempfile.mkstemp gives
        assert not target.exists()  # nothing visible until the block succeeds
        tmp.write_text("{}")
    assert target.read_text() == "{}"
    with atomic_path(tmp_path / "empty.txt"):
        pass
    assert (tmp_path / "empty.txt").read_bytes() == b""
    assert _listing(tmp_path) == ["deep", "deep/er", "deep/er/file.json", "empty.txt"]


def test_write_text_atomic_replaces(tmp_path):
    target = tmp_path / "dataset.json"
    write_text_atomic(target, "one\n")
    write_text_atomic(target, "two\n")
    assert target.read_text() == "two\n"
    assert _listing(tmp_path) == ["dataset.json"]


def test_check_writable(tmp_path):
    target = tmp_path / "x.nii.gz"
    assert check_writable(target, overwrite=False) == target
    target.write_bytes(b"x")
    with pytest.raises(InputError, match="--overwrite") as info:
        check_writable(str(target), overwrite=False)
    assert str(target) in str(info.value)
    assert check_writable(target, overwrite=True) == target


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "move-aside"])
def test_replace_folder_swaps_in_the_new_folder(tmp_path, monkeypatch, exchange):
    from versaseg.io import atomic

    if not exchange:  # the path of systems without renameat2(RENAME_EXCHANGE)
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    elif atomic._renameat2() is None:
        pytest.skip("no renameat2 on this system")
    out, new = tmp_path / "out", tmp_path / ".out.new.tmp"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    with pytest.raises(InputError, match="--overwrite"):
        replace_folder(new, out, overwrite=False)
    assert (out / "sub" / "old.txt").read_text() == "old"
    replace_folder(new, out)
    assert _listing(tmp_path) == ["out", "out/new.txt"]  # the old folder is gone, nothing hidden is left
    fresh = tmp_path / ".fresh.tmp"
    fresh.mkdir()
    replace_folder(fresh, tmp_path / "first")  # no old folder: a plain rename
    assert (tmp_path / "first").is_dir() and not fresh.exists()
