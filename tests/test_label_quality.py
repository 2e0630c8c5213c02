"""Label quality figures: point-mark files, NME, and how boxes cover hand-marked faces."""

from __future__ import annotations

import numpy as np
import pytest

from faceyolo.data.label_quality import CoverageCounts, four_points, nme, read_point_marks
from faceyolo.errors import FaceyoloError

# A face marked at eyes (40, 50) and (60, 50), nose (50, 60), mouth centre (50, 70): inter-ocular 20 px.
MARK = np.array([[40, 50], [60, 50], [50, 60], [50, 70]], np.float64)
FIVE = np.array([[40, 50], [60, 50], [50, 60], [44, 70], [56, 70]], np.float64)


def test_point_marks_are_read_per_image_with_eyes_in_image_order(tmp_path):
    swapped = " ".join(f"{v:.1f}" for v in MARK[[1, 0, 2, 3]].ravel())
    (tmp_path / "gt.txt").write_text(f"a.jpg {swapped}\na.jpg {swapped}\nb.jpg {swapped}\n\n")
    marks = read_point_marks(tmp_path / "gt.txt")
    assert marks["a.jpg"].shape == (2, 4, 2) and marks["b.jpg"].shape == (1, 4, 2)
    np.testing.assert_allclose(marks["b.jpg"][0], MARK)


@pytest.mark.parametrize("line, reason", [("a.jpg 1 2 3", "8 numbers"), ("a.jpg 1 2 3 4 5 6 7 x", "numbers")])
def test_bad_point_mark_lines_name_the_file_and_line(tmp_path, line, reason):
    (tmp_path / "gt.txt").write_text(f"{line}\n")
    with pytest.raises(FaceyoloError, match=f"gt.txt:1: .*{reason}"):
        read_point_marks(tmp_path / "gt.txt")


def test_nme_of_five_points_against_four_marks_uses_the_mouth_corner_mean():
    assert nme(four_points(FIVE[None]), MARK[None]) == pytest.approx([0.0])
    shifted = four_points(FIVE[None] + [2.0, 0.0])  # every point 2 px right: 2 / 20
    assert nme(shifted, MARK[None]) == pytest.approx([0.1])


def test_coverage_pairs_boxes_with_marks_one_to_one_and_counts_the_rest():
    marks = np.stack([MARK, MARK + 100])
    # Boxes 0 and 1 both hold face 0; box 0 is centred nearer its points, box 2 holds nothing marked.
    boxes = np.array([[30, 40, 70, 80], [34, 44, 70, 80], [300, 300, 340, 340]], np.float64)
    landmarks = np.stack([FIVE, FIVE + 1, FIVE])
    counts = CoverageCounts()
    counts.add_image(boxes, landmarks, marks)
    counts.add_image(np.zeros((0, 4)), np.zeros((0, 5, 2)), MARK[None])
    row = counts.row()
    assert (row["marked faces"], counts.covered, row["boxes"], row["unmarked boxes"]) == (3, 1, 3, 2)
    assert row["covered"] == pytest.approx(1 / 3, abs=1e-4)
    assert counts.errors == pytest.approx([0.0])  # box 0 (exact landmarks) paired, not box 1 (1 px off)
