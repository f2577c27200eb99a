"""Greedy slice suggestions from a doubt volume (versaseg.tasks.completion_suggest)."""

import numpy as np

from versaseg.tasks.completion_suggest import suggest_slices


def test_the_middle_of_the_widest_gap_wins_under_even_doubt():
    doubt = np.ones((4, 4, 41), np.float32)
    annotated = [0, 8, 16, 40]
    doubt[:, :, annotated] = 0.0
    picks = suggest_slices(doubt, [2], 2, {2: 8}, {2: annotated})
    assert picks[0]["slice"] == 28  # bisects the 24-slice gap, not an 8-slice one
    assert picks[1]["slice"] != 27 and picks[1]["slice"] != 29  # never next to the first pick
    assert picks[0]["score"] > picks[1]["score"] > 0


def test_a_wide_doubtful_gap_beats_a_sharper_spot_next_to_an_annotation():
    doubt = np.zeros((4, 4, 41), np.float32)
    doubt[:, :, 11] = 3.0  # one very doubtful slice, one slice from the annotated slice 10
    doubt[:, :, 22:39] = 1.0  # moderate doubt over most of the gap 20..40
    picks = suggest_slices(doubt, [2], 1, {2: 10}, {2: [0, 10, 20, 40]})
    assert 27 <= picks[0]["slice"] <= 33


def test_picks_take_the_axis_that_cuts_the_doubt_and_skip_annotated_slices():
    doubt = np.zeros((30, 30, 30), np.float32)
    doubt[4:7, :, :] = 1.0  # a thin doubtful slab: one slice along axis 0 covers it, axis 2 slices only cross it
    picks = suggest_slices(doubt, [0, 2], 2, {0: 10, 2: 10}, {0: [5, 20], 2: [0, 29]})
    assert picks[0]["axis"] == 2  # axis 0 slice 5 is annotated: what doubt is left lies between axial slices
    picks = suggest_slices(doubt, [0, 2], 2, {0: 10, 2: 10}, {0: [20], 2: [0, 29]})
    assert picks[0]["axis"] == 0 and picks[0]["slice"] == 5
