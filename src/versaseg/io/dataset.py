"""The nnU-Net v2 / Decathlon dataset layout.

```
DATASET/
  dataset.json            channel_names, labels, numTraining, file_ending
  imagesTr/CASE_0000.nii.gz, CASE_0001.nii.gz ...   one file per channel
  labelsTr/CASE.nii.gz
  imagesTs/CASE_0000.nii.gz ...
```

Labels map names to integer values; 0 is background; a label named ``ignore`` (the highest value) marks unannotated
voxels. Region-based labels (tuples) are not supported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from versaseg.errors import InputError, short_repr
from versaseg.io.atomic import write_text_atomic
from versaseg.io.image import IMAGE_ENDINGS, case_name, file_ending

IGNORE_NAME = "ignore"
_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")
_INDEX = re.compile(r"^[0-9]{1,9}\Z")  # a channel index or label value as a dataset.json key: ASCII digits


@dataclass
class CaseFiles:
    """The files of one case: one image per channel (in channel order) and an optional label."""

    case_id: str
    images: list[Path]
    label: Path | None = None


@dataclass
class DatasetSpec:
    """A parsed ``dataset.json`` plus the dataset root."""

    root: Path
    channel_names: dict[int, str]
    labels: dict[str, int]
    file_ending: str = ".nii.gz"
    num_training: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def ignore_label(self) -> int | None:
        """The value of the ``ignore`` label, or None."""
        return self.labels.get(IGNORE_NAME)

    @property
    def class_labels(self) -> dict[str, int]:
        """Labels the network predicts (background included, ignore excluded), sorted by value."""
        return dict(sorted(((k, v) for k, v in self.labels.items() if k != IGNORE_NAME), key=lambda kv: kv[1]))

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    def training_cases(self) -> list[CaseFiles]:
        """Cases of imagesTr with their labelsTr label; raises InputError for missing files."""
        cases = self._cases("imagesTr")
        if not cases:
            raise InputError(f"no training images ending in {self.file_ending}", self.root / "imagesTr")
        for case in cases:
            label = self.root / "labelsTr" / f"{case.case_id}{self.file_ending}"
            if not label.exists():
                raise InputError(f"label file missing for case {case.case_id}", label)
            case.label = label
        self._check_orphan_labels(cases)
        return cases

    def _check_orphan_labels(self, cases: list[CaseFiles]) -> None:
        """A labelsTr file whose case has no images means the case's channel files are missing."""
        labels_dir = self.root / "labelsTr"
        known = {case.case_id for case in cases}
        for label in sorted(labels_dir.iterdir()):
            if label.name.startswith(".") or not label.name.endswith(self.file_ending):
                continue
            case_id = label.name[: -len(self.file_ending)]
            if case_id not in known:
                missing = self.root / "imagesTr" / f"{case_id}_0000{self.file_ending}"
                raise InputError(f"channel file missing for case {case_id} (labelsTr has {label.name})", missing)

    def test_cases(self) -> list[CaseFiles]:
        """Cases of imagesTs (no labels); empty if the folder is absent."""
        if not (self.root / "imagesTs").is_dir():
            return []
        return self._cases("imagesTs")

    def _cases(self, folder: str) -> list[CaseFiles]:
        directory = self.root / folder
        if not directory.is_dir():
            return []
        files = [p for p in directory.iterdir() if p.name.endswith(self.file_ending) and not p.name.startswith(".")]
        grouped = group_channel_files(files, self.num_channels)
        return [CaseFiles(case_id, images) for case_id, images in sorted(grouped.items())]

    def to_json(self) -> dict:
        data = {
            "channel_names": {str(k): v for k, v in sorted(self.channel_names.items())},
            "labels": self.labels,
            "numTraining": self.num_training,
            "file_ending": self.file_ending,
        }
        data.update(self.extra)
        return data

    def save(self) -> None:
        write_text_atomic(self.root / "dataset.json", json.dumps(self.to_json(), indent=2) + "\n")


def group_channel_files(files: list[Path], num_channels: int | None = None) -> dict[str, list[Path]]:
    """Group image files by case using the ``CASE_XXXX`` channel suffix (nnU-Net naming).

    Files without the suffix are single-channel cases named after the file. With ``num_channels`` given, every case must
    have exactly channels 0..num_channels-1; otherwise raises InputError naming the missing file.
    """
    grouped: dict[str, dict[int, Path]] = {}
    for path in files:
        path = Path(path)
        name = case_name(path)
        match = _CHANNEL_SUFFIX.match(name)
        case_id, channel = (match["case"], int(match["channel"])) if match else (name, 0)
        if channel in grouped.setdefault(case_id, {}):
            raise InputError(f"two files for channel {channel} of case {case_id}", path)
        grouped[case_id][channel] = path
    result = {}
    for case_id, channels in grouped.items():
        expected = range(num_channels) if num_channels is not None else range(max(channels) + 1)
        for channel in expected:
            if channel not in channels:
                any_file = next(iter(channels.values()))
                missing = any_file.parent / f"{case_id}_{channel:04d}{file_ending(any_file)}"
                raise InputError(f"channel file missing for case {case_id}", missing)
        extra = sorted(set(channels) - set(expected))
        if extra:
            raise InputError(
                f"case {case_id} has channel {extra[0]}, dataset.json lists {len(expected)}", channels[extra[0]]
            )
        result[case_id] = [channels[c] for c in expected]
    return result


def read_json_object(path: Path) -> dict:
    """Parse a JSON file that must hold an object; InputError naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid JSON ({exc})", path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or type(exc).__name__})", path) from None
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and an integer of more than 4300 digits
        raise InputError(f"invalid JSON ({' '.join(str(exc).split())})", path) from None
    except RecursionError:
        raise InputError("invalid JSON (nested too deeply)", path) from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name} must hold a JSON object", path)
    return data


def load_dataset(root: str | Path) -> DatasetSpec:
    """Parse and check ``root/dataset.json``; raises InputError naming the file and the problem."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("dataset folder not found", root)
    path = root / "dataset.json"
    if not path.exists():
        raise InputError("dataset.json not found (expected the nnU-Net v2 layout)", path)
    data = read_json_object(path)
    channels = data.get("channel_names") or data.get("modality")  # 'modality': the Decathlon / nnU-Net v1 name
    if channels is None:
        if "channel_names" not in data:
            raise InputError("missing key 'channel_names'", path)
        channels = data["channel_names"]
    if "labels" not in data:
        raise InputError("missing key 'labels'", path)
    channel_names = parse_channel_names(channels, path)
    labels = parse_labels(data["labels"], path)
    ending = data.get("file_ending", ".nii.gz")
    if not isinstance(ending, str) or ending not in IMAGE_ENDINGS:
        raise InputError(f"unsupported file_ending {short_repr(ending)}; use one of {', '.join(IMAGE_ENDINGS)}", path)
    num_training = data.get("numTraining", 0)
    if isinstance(num_training, str) and _INDEX.match(num_training):
        num_training = int(num_training)
    if not isinstance(num_training, int) or isinstance(num_training, bool) or num_training < 0:
        raise InputError(f"numTraining must be a non-negative integer, got {short_repr(num_training)}", path)
    known_keys = {"channel_names", "modality", "labels", "numTraining", "file_ending"}
    extra = {k: v for k, v in data.items() if k not in known_keys}
    return DatasetSpec(root, channel_names, labels, ending, num_training, extra)


def parse_channel_names(raw, source: str | Path) -> dict[int, str]:
    """Check a ``channel_names`` (or Decathlon ``modality``) mapping: '0'..'N-1' -> channel name (a string)."""
    if not isinstance(raw, dict) or not all(isinstance(k, str) and _INDEX.match(k) for k in raw):
        raise InputError("channel_names must map channel indices ('0', '1', ...) to names", source)
    bad = [(k, v) for k, v in raw.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise InputError(f"channel_names: channel {bad[0][0]} must be named by a non-empty string, got "
                         f"{short_repr(bad[0][1])}", source)
    channel_names = {int(k): v for k, v in raw.items()}
    if len(channel_names) != len(raw):
        raise InputError(f"channel_names lists a channel twice ({short_repr(sorted(raw))})", source)
    if sorted(channel_names) != list(range(len(channel_names))) or not channel_names:
        raise InputError("channel_names must be numbered 0..N-1", source)
    return channel_names


def parse_labels(raw: dict, source: str | Path) -> dict[str, int]:
    """Check a ``labels`` mapping (name -> int): background 0, unique values, ignore is the highest."""
    if not isinstance(raw, dict) or not raw:
        raise InputError("labels must be a non-empty mapping of name -> integer value", source)
    if all(isinstance(k, str) and _INDEX.match(k) for k in raw) and all(isinstance(v, str) for v in raw.values()):
        if len(set(raw.values())) != len(raw):
            raise InputError("label names must be unique", source)
        if len({int(value) for value in raw}) != len(raw):
            raise InputError(f"labels list a value twice ({short_repr(sorted(raw))})", source)
        raw = {name: int(value) for value, name in raw.items()}  # Decathlon / nnU-Net v1: value -> name
    labels = {}
    for name, value in raw.items():
        if isinstance(value, (list, tuple)):
            raise InputError(f"region-based label {short_repr(name)} is not supported", source)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"label {short_repr(name)} must be a non-negative integer, got {short_repr(value)}",
                             source)
        labels[str(name)] = value
    if 0 not in labels.values():
        raise InputError("labels must include background with value 0", source)
    if len(set(labels.values())) != len(labels):
        raise InputError("label values must be unique", source)
    if IGNORE_NAME in labels and labels[IGNORE_NAME] != max(labels.values()):
        raise InputError("the 'ignore' label must have the highest value", source)
    class_values = sorted(v for k, v in labels.items() if k != IGNORE_NAME)
    if class_values != list(range(len(class_values))):
        raise InputError(f"class label values must be consecutive from 0, got {short_repr(class_values, 120)}", source)
    return labels
