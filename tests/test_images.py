"""One image reader and one suffix list for detect, eval, convert and training."""

import cv2
import numpy as np
import pytest

from faceyolo.data.config import image_files
from faceyolo.errors import FaceyoloError
from faceyolo.eval.predictions import find_images
from faceyolo.images import IMAGE_SUFFIXES, read_image
from faceyolo.inference.sources import Frame, Source


@pytest.fixture
def image_folder(tmp_path):
    """A folder with one small image of every accepted suffix and one text file."""
    image = np.full((24, 32, 3), (10, 120, 230), np.uint8)
    for suffix in IMAGE_SUFFIXES:
        assert cv2.imwrite(str(tmp_path / f"img{suffix}"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_detect_eval_and_datasets_take_the_same_images(image_folder):
    expected = sorted(f"img{s}" for s in IMAGE_SUFFIXES)
    assert sorted(p.name for p in find_images(image_folder)) == expected
    assert sorted(p.name for p in image_files(image_folder)) == expected
    frames = [item for item in Source(str(image_folder)) if isinstance(item, Frame)]
    assert sorted(frame.name for frame in frames) == expected
    assert all(frame.image.shape == (24, 32, 3) for frame in frames)


def test_reader_names_the_file_it_cannot_decode(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(FaceyoloError, match=r"broken\.jpg: cannot decode image \(\d+ bytes"):
        read_image(broken)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(FaceyoloError, match=r"empty\.png: cannot decode image \(0 bytes\)"):
        read_image(tmp_path / "empty.png")
