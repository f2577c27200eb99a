"""Property-based tests of the JSON parsers: dataset.json (:func:`load_dataset`) and a run's config.json
(:func:`load_run_config`).

Property: random JSON, mutations of a valid file and damaged text either parse into a consistent result or raise one
:class:`InputError` line naming the file; never another exception. A loaded config also validates without anything
but InputError. The examples are derandomized (tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from versaseg.errors import InputError  # noqa: E402
from versaseg.io.dataset import load_dataset  # noqa: E402
from versaseg.training.config import SynthConfig, TrainConfig, load_run_config  # noqa: E402


def fuzz(examples: int) -> settings:
    """``examples`` derandomized examples, no database, no deadline (as the profile in tests/conftest.py, stated here
    too so that the tests stay reproducible however they are collected)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

KEYISH = st.sampled_from(["0", "1", "2", "00", "01", "-1", "1.0", " 1", "1_0", "\u0663", "\u00b2", "", "a", "T1",
                          "ignore", "background", "a\nb"]) | st.text(max_size=6)
SCALARS = (st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -(10**30), 2**63])
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(KEYISH, children, max_size=4), max_leaves=12)

VALID_DATASET = {
    "channel_names": {"0": "T1", "1": "T2"},
    "labels": {"background": 0, "brain": 1, "vessel": 2, "ignore": 3},
    "numTraining": 2,
    "file_ending": ".nii.gz",
}


def _dump(value) -> str:
    try:
        return json.dumps(value)  # NaN / Infinity as Python writes them (json.loads reads them back)
    except ValueError:  # an integer of more than 4300 digits
        return "{" + "1" * 5000 + "}"


def _check_error(exc: InputError, path: Path) -> None:
    message = str(exc)
    assert str(path) in message, message
    assert "\n" not in message, message


def _load_dataset(root: Path, text: str | bytes):
    path = root / "dataset.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        spec = load_dataset(root)
    except InputError as exc:
        _check_error(exc, path)
        return None
    # a parsed spec is consistent: channels 0..N-1 named by strings, labels consecutive ints with background 0
    assert sorted(spec.channel_names) == list(range(len(spec.channel_names))) and spec.channel_names
    assert all(isinstance(v, str) for v in spec.channel_names.values())
    assert all(type(v) is int for v in spec.labels.values()) and 0 in spec.labels.values()
    assert list(spec.class_labels.values()) == list(range(len(spec.class_labels)))
    assert type(spec.num_training) is int and spec.num_training >= 0
    json.dumps(spec.to_json())
    return spec


@fuzz(150)
@given(value=JSON)
@example(value=[[[]]])
@example(value={"channel_names": {"0": "T1"}, "labels": {"background": 0}, "numTraining": float("inf")})
@example(value={"channel_names": {"0": "T1"}, "labels": {"\u0663": "background", "0": "x"}})
def test_random_json_dataset(tmp_path_factory, value):
    _load_dataset(tmp_path_factory.mktemp("ds"), _dump(value))


@st.composite
def dataset_mutations(draw) -> dict:
    data = json.loads(json.dumps(VALID_DATASET))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "channel_names", "labels", "delete"]))
        if where == "top":
            data[draw(st.sampled_from([*VALID_DATASET, "modality", "extra"]))] = draw(JSON)
        elif where == "delete":
            data.pop(draw(st.sampled_from(sorted(VALID_DATASET))), None)
        elif isinstance(data.get(where), dict):
            data[where][draw(KEYISH)] = draw(JSON | st.integers(-2, 5))
    return data


@fuzz(200)
@given(data=dataset_mutations())
@example(data={**VALID_DATASET, "numTraining": True})
@example(data={**VALID_DATASET, "channel_names": {"0": "T1", "00": "T2"}})
@example(data={**VALID_DATASET, "channel_names": {"0": "T1", "\u0661": "T2"}})
@example(data={**VALID_DATASET, "channel_names": {"0": ["T1"], "1": None}})
@example(data={**VALID_DATASET, "labels": "background"})
@example(data={**VALID_DATASET, "labels": {"background": 0, "a\nb": 1.0}})
@example(data={**VALID_DATASET, "file_ending": [".nii.gz"]})
def test_mutated_dataset_json(tmp_path_factory, data):
    _load_dataset(tmp_path_factory.mktemp("ds"), _dump(data))


@fuzz(80)
@given(flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.none() | st.floats(0, 1))
@example(flips=[(0.0, 91)], cut=None)
def test_damaged_dataset_json_text(tmp_path_factory, flips, cut):
    text = bytearray(json.dumps(VALID_DATASET).encode())
    for where, value in flips:
        text[int(where * (len(text) - 1))] = value
    if cut is not None:
        text = text[: int(cut * len(text))]
    _load_dataset(tmp_path_factory.mktemp("ds"), bytes(text))


def test_deeply_nested_and_huge_json_are_input_errors(tmp_path):
    for text in ("[" * 100_000 + "]" * 100_000, '{"numTraining": ' + "9" * 5000 + "}"):
        with pytest.raises(InputError, match="invalid JSON") as info:
            _load_dataset(tmp_path, text) or load_dataset(tmp_path)
        _check_error(info.value, tmp_path / "dataset.json")
    (tmp_path / "dataset.json").unlink()
    (tmp_path / "dataset.json").mkdir()
    with pytest.raises(InputError, match="cannot read") as info:
        load_dataset(tmp_path)


# ------------------------------------------------------------------------------------------------------ config.json


def _config_dicts() -> list[dict]:
    train = json.loads(TrainConfig(dataset="d", channel_names=["T1"], labels={"background": 0, "a": 1},
                                   spacing=[1.0, 1.0, 2.0], patch_size=[32, 32]).to_json())
    synth = json.loads(SynthConfig(source="T1", target="T2", target_range=[0.0, 1.0]).to_json())
    return [train, synth]


CONFIGS = _config_dicts()


def _load_config(run_dir: Path, text: str):
    path = run_dir / "config.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_run_config(run_dir)
    except InputError as exc:
        _check_error(exc, path)
        return None
    try:
        config.validate()
    except InputError as exc:
        assert "\n" not in str(exc)
    return config


@st.composite
def config_mutations(draw) -> dict:
    data = json.loads(json.dumps(draw(st.sampled_from(CONFIGS))))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data)) | KEYISH)
        if draw(st.integers(0, 9)) == 0:
            data.pop(key, None)
        else:
            data[key] = draw(JSON | st.integers(-3, 70) | st.floats(-1, 3) | st.lists(st.integers(-1, 70), max_size=3))
    return data


@fuzz(200)
@given(data=config_mutations())
@example(data={**CONFIGS[0], "epochs": "5"})
@example(data={**CONFIGS[0], "epochs": True})
@example(data={**CONFIGS[0], "learning_rate": float("nan")})
@example(data={**CONFIGS[0], "patch_size": [32, "32"]})
@example(data={**CONFIGS[0], "labels": {"background": 0, "a": True}})
@example(data={**CONFIGS[0], "ignore_label": 2.5})
@example(data={**CONFIGS[1], "percentiles": [1, None]})
def test_mutated_config_json(tmp_path_factory, data):
    config = _load_config(tmp_path_factory.mktemp("run"), _dump(data))
    if _dump(data) in {_dump(c) for c in CONFIGS}:  # unchanged (compare text: True == 1 in Python)
        assert config is not None


@fuzz(60)
@given(value=JSON)
def test_random_json_config(tmp_path_factory, value):
    _load_config(tmp_path_factory.mktemp("run"), _dump(value))
