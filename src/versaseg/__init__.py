"""versaseg: trustworthy segmentations from imperfect medical image data."""

__version__ = "0.1.0"
