"""read_volume over the corpus of bad inputs (tests/corpus): each is one InputError line naming the file and saying
what is wrong, never another exception."""

from __future__ import annotations

import pytest
from corpus import make_corpus
from corpus.make_bad_inputs import nifti_bytes

from versaseg.errors import InputError
from versaseg.io.image import read_volume


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("bad_inputs"))


def test_corpus_covers_the_issue_list(corpus):
    problems = " | ".join(item.problem for item in corpus)
    for words in ("does not exist", "empty", "NIfTI cut", ".nii.gz cut", "random bytes with a .nii", "every axis",
                  "negative", "NaN", "40000^3", "4D series", "2D", "complex", "RGB", "vox_offset", "NRRD header",
                  ".mha whose raw data", "no DICOM"):
        assert words in problems, words
    assert len({item.path for item in corpus}) == len(corpus)


def test_every_bad_input_is_one_input_error_line_naming_the_file(corpus):
    failures = []
    for item in corpus:
        try:
            read_volume(item.path)
        except InputError as exc:
            message = str(exc)
            if item.expected not in message or str(item.path) not in message or "\n" in message \
                    or exc.path != item.path:
                failures.append(f"{item.path.name} ({item.problem}): {message!r}, expected {item.expected!r}")
        except Exception as exc:  # noqa: BLE001 - the point: nothing but InputError
            failures.append(f"{item.path.name} ({item.problem}): {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{item.path.name} ({item.problem}): read without an error")
    assert not failures, "\n".join(failures)


def test_limit_message_and_raising_the_limit(corpus, monkeypatch):
    from versaseg.io import header

    item = next(i for i in corpus if i.path.name == "huge_shape.nii")
    with pytest.raises(InputError) as info:
        read_volume(item.path)
    assert "header declares 40000 x 40000 x 40000 voxels (6.4e13), above the limit 1.2e9; pass --max-voxels to " \
           "raise it" in str(info.value)
    monkeypatch.setenv(header.ENV_MAX_VOXELS, "1e14")
    with pytest.raises(InputError, match="file is truncated"):  # past the limit check, the file is far too short
        read_volume(item.path)
    monkeypatch.setenv(header.ENV_MAX_VOXELS, "many")
    with pytest.raises(InputError, match="VERSASEG_MAX_VOXELS"):
        read_volume(item.path)
    monkeypatch.delenv(header.ENV_MAX_VOXELS)
    header.set_max_voxels(100)
    try:
        good = next(i for i in corpus if i.path.name == "negative_pixdim.nii")
        with pytest.raises(InputError, match=r"6 x 7 x 8 voxels \(3.36e2\), above the limit 1e2"):
            read_volume(good.path)
    finally:
        header.set_max_voxels(None)


def test_cli_max_voxels_option_sets_the_limit_for_one_command(corpus, tmp_path):
    import os

    from typer.testing import CliRunner

    from versaseg.cli.main import app
    from versaseg.io import header

    limit, env = header.max_voxels(), os.environ.get(header.ENV_MAX_VOXELS)
    good = tmp_path / "good.nii"
    good.write_bytes(nifti_bytes())
    result = CliRunner().invoke(app, ["--max-voxels", "100", "evaluate", str(good), str(good)])
    assert result.exit_code == 2
    assert f"error: {good}: header declares 6 x 7 x 8 voxels (3.36e2), above the limit 1e2; pass --max-voxels" \
        in result.output
    assert header.max_voxels() == limit and os.environ.get(header.ENV_MAX_VOXELS) == env  # restored afterwards
    result = CliRunner().invoke(app, ["--max-voxels", "lots", "evaluate", str(good), str(good)])
    assert result.exit_code == 2 and "--max-voxels" in result.output
