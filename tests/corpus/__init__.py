"""Bad image inputs made on demand: ``make_corpus(folder) -> list[BadInput]`` (see make_bad_inputs.py)."""

from corpus.make_bad_inputs import BadInput, make_corpus

__all__ = ["BadInput", "make_corpus"]
