"""`faceyolo blur`: the hiding methods, and videos through PyAV — audio and subtitles copied unchanged,
rotation, frame count and timing kept, no face-frame left visible, truncated files and dropped streams."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from faceyolo.errors import FaceyoloError
from faceyolo.inference.blur import anonymise, anonymise_mask
from faceyolo.inference.blur_task import run_blur
from faceyolo.inference.face import Face
from faceyolo.inference.video import VideoInput
from video_scenes import (
    ScriptedDetector,
    crossing_scene,
    decoded_frames,
    leak_share,
    packets,
    textured_sprite,
    write_clip,
)

pytest.importorskip("av")


def _tilted_face() -> Face:
    box = np.array([20, 30, 80, 110], dtype=np.float32)
    landmarks = np.array([[35, 55], [65, 65], [50, 75], [38, 90], [62, 95]], dtype=np.float32)  # eyes tilted
    return Face(box=box, score=0.9, landmarks=landmarks)


@pytest.mark.parametrize("method", ["gaussian", "pixelate", "solid", "ellipse"])
def test_each_method_changes_the_face_and_nothing_outside_its_mask(method):
    image = np.random.default_rng(0).integers(0, 256, (140, 120, 3), dtype=np.uint8)
    face = _tilted_face()
    hidden = anonymise(image, [face], method, mask_scale=1.2)
    mask = anonymise_mask(image.shape[:2], [face], method, mask_scale=1.2)
    assert np.array_equal(hidden[~mask], image[~mask])
    assert np.abs(hidden[mask].astype(int) - image[mask]).mean() > 40  # noise is gone, not dimmed
    box_pixels = (80 - 20) * 1.2 * (110 - 30) * 1.2
    if method == "ellipse":  # follows the face: about π/4 of its box, turned with the eye line
        assert mask.sum() == pytest.approx(np.pi / 4 * box_pixels, rel=0.05)
        ys, xs = np.nonzero(mask)
        long_axis = np.linalg.eigh(np.cov(xs, ys))[1][:, 1]
        roll = np.arctan2(65 - 55, 65 - 35)  # eye line: the face is rolled clockwise by this much
        assert abs(long_axis @ [-np.sin(roll), np.cos(roll)]) > np.cos(np.radians(3))
    else:
        assert mask.sum() == pytest.approx(box_pixels, rel=0.05)
    if method == "solid":
        assert not hidden[mask].any()
    if method == "pixelate":
        assert len(np.unique(hidden[mask].reshape(-1, 3), axis=0)) <= 12 * 12


def test_unknown_method_and_non_positive_mask_scale_are_refused():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(FaceyoloError, match="unknown blur method 'swirl'"):
        anonymise(image, [], "swirl")
    with pytest.raises(FaceyoloError, match="--mask-scale must be positive"):
        anonymise(image, [], "solid", mask_scale=0)


def _visible_face_frames(scene, video: Path) -> float:
    """Return the share of ground-truth face-frames of `video` (blurred solid) whose box is not black."""
    masks = [frame.max(axis=2) < 40 for frame in decoded_frames(video)]
    return leak_share(scene, masks)


@pytest.fixture()
def scene():
    return crossing_scene([textured_sprite(1), textured_sprite(2)], frames=30)


def test_blur_video_keeps_audio_subtitles_rotation_frames_and_timing_and_hides_every_face(scene, tmp_path):
    clip = tmp_path / "clip.mkv"
    write_clip(clip, scene, audio=True, subtitle=True, rotation=90)
    project = tmp_path / "runs"
    summary = run_blur(str(clip), method="solid", project=project, name="b", progress=False,
                       detector=ScriptedDetector(scene))
    out = project / "b" / "clip.mkv"
    assert summary.video_frames == scene.frames and not summary.skipped
    assert "faces hidden" in summary.line() and "frames/s" in summary.line()
    assert packets(out, "audio") == packets(clip, "audio") and packets(clip, "audio")
    assert packets(out, "subtitle") == packets(clip, "subtitle") == [(0, b"a face walks by")]
    source, result = VideoInput(clip), VideoInput(out)
    assert result.rotation == source.rotation == 90
    assert [f.pts for f in result] == [f.pts for f in source]
    assert decoded_frames(out)[0].shape == (scene.height, scene.width, 3)  # upright again
    assert _visible_face_frames(scene, out) == 0

    run_blur(str(clip), method="solid", tracking=False, project=project, name="b", progress=False,
             detector=ScriptedDetector(scene))
    assert _visible_face_frames(scene, project / "b2" / "clip.mkv") > 0  # per-frame detection leaks


def test_truncated_video_is_named_and_skipped_with_the_frames_done_kept(scene, tmp_path):
    clip = tmp_path / "cut.mkv"
    write_clip(clip, scene, audio=True)
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size * 6 // 10])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    for path in (clip, broken):
        (tmp_path / "in").mkdir(exist_ok=True)
        path.rename(tmp_path / "in" / path.name)
    summary = run_blur(str(tmp_path / "in"), project=tmp_path / "runs", progress=False,
                       detector=ScriptedDetector(scene))
    reasons = dict(summary.skipped)
    assert set(reasons) == {"cut.mkv", "broken.mp4"}
    assert reasons["cut.mkv"].startswith("truncated") and "frames before are kept" in reasons["cut.mkv"]
    assert reasons["broken.mp4"].startswith("cannot open video")
    kept = decoded_frames(tmp_path / "runs" / "exp" / "cut.mkv")
    assert 0 < len(kept) == summary.video_frames < scene.frames


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _DroppingHandler(_QuietHandler):
    """Announces the whole file, then sends 60% of it and hangs up: a stream that drops."""

    def do_GET(self) -> None:
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) * 6 // 10])


@pytest.fixture()
def serve(tmp_path):
    """Return a function serving tmp_path on 127.0.0.1 with a handler class; servers stop after the test."""
    servers = []

    def start(handler) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler,
                                                                                      directory=str(tmp_path)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_http_stream_is_blurred_with_a_stride_and_a_dropped_stream_keeps_its_frames(scene, tmp_path, serve):
    write_clip(tmp_path / "clip.mkv", scene, audio=True)
    url = serve(_QuietHandler) + "/clip.mkv"
    summary = run_blur(url, method="solid", vid_stride=2, project=tmp_path / "runs", progress=False,
                       detector=ScriptedDetector(scene, stride=2))
    out = tmp_path / "runs" / "exp" / "clip.mkv"
    assert summary.video_frames == scene.frames and not summary.skipped
    assert packets(out, "audio") == packets(tmp_path / "clip.mkv", "audio")
    assert len(decoded_frames(out)) == scene.frames  # the frames between detections are written too

    dropping = serve(_DroppingHandler) + "/clip.mkv"
    summary = run_blur(dropping, project=tmp_path / "runs", progress=False, detector=ScriptedDetector(scene))
    assert [name for name, _ in summary.skipped] == ["clip.mkv"]
    assert "frames before are kept" in summary.skipped[0][1]
    assert 0 < len(decoded_frames(tmp_path / "runs" / "exp2" / "clip.mkv")) == summary.video_frames
