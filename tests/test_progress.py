"""Progress output: a bar on a terminal, one plain line per step in a log, nothing when disabled."""

import io

from versaseg.progress import bar_enabled, progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_one_line_per_item_and_no_bar_frames():
    log = io.StringIO()
    assert list(progress(["a", "b", "c"], "predict", "case", stream=log)) == ["a", "b", "c"]
    lines = log.getvalue().splitlines()
    assert [line.split(" (")[0] for line in lines] == ["predict 1/3 case", "predict 2/3 case", "predict 3/3 case"]
    assert "\r" not in log.getvalue()


def test_on_a_terminal_a_bar_and_disabled_means_silent():
    terminal = _Terminal()
    assert list(progress(range(4), "train", stream=terminal)) == [0, 1, 2, 3]
    assert "\r" in terminal.getvalue() and "4/4" in terminal.getvalue()
    quiet = io.StringIO()
    assert list(progress(iter([1, 2]), "x", enabled=False, stream=quiet)) == [1, 2]
    assert quiet.getvalue() == ""


def test_bar_enabled_only_when_wanted_and_on_a_terminal():
    assert bar_enabled(True, _Terminal())
    assert not bar_enabled(False, _Terminal())
    assert not bar_enabled(True, io.StringIO())
