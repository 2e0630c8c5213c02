"""recipes/default/split_holdout.py: the held-out images are disjoint from training and spread over events."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "default" / "split_holdout.py"


def test_holdout_is_disjoint_capped_per_event_and_linked_for_wider_eval(tmp_path):
    images = tmp_path / "images" / "train"
    sizes = {"0--Parade": 9, "1--Handshaking": 4, "2--Demonstration": 1}
    for event, count in sizes.items():
        (images / event).mkdir(parents=True)
        for k in range(count):
            (images / event / f"{event.split('--')[0]}_{k}.jpg").write_bytes(b"jpg")
    out = tmp_path / "lists"
    run = [sys.executable, str(SCRIPT), "--images", str(images), "--out", str(out)]
    subprocess.run(run, check=True, capture_output=True)
    train = set((out / "valextra_train.txt").read_text().split())
    holdout = (out / "holdout.txt").read_text().split()
    assert not train & set(holdout) and len(train) + len(holdout) == sum(sizes.values())
    per_event = {event: sum(Path(p).parent.name == event for p in holdout) for event in sizes}
    assert 2 <= per_event["0--Parade"] <= 3 and per_event["1--Handshaking"] == 2
    assert per_event["2--Demonstration"] == 0  # an event with one image keeps it for training
    linked = sorted(str(p.resolve()) for p in (out / "holdout_wider").glob("*/*.jpg"))
    assert linked == sorted(str(Path(p).resolve()) for p in holdout)
    subprocess.run(run, check=True, capture_output=True)  # seeded: the same split again
    assert (out / "holdout.txt").read_text().split() == holdout
