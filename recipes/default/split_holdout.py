"""Split the converted WIDER val-extra images into training and a held-out part, by event.

Each event gives the holdout two images (three for a seeded third of the events; never more than half of
its images), so the holdout spans the events and the rest trains. Writes valextra_train.txt, holdout.txt
(image paths, one a line) and a holdout_wider/<event>/<file>.jpg tree of links for `faceyolo eval widerface`.
"""

import argparse
import random
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--images", required=True, type=Path, help="converted images/train folder (<event>/<file>.jpg)"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for the lists and holdout_wider/")
    parser.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    args = parser.parse_args()
    by_event: dict[str, list[Path]] = defaultdict(list)
    for image in sorted(args.images.glob("*/*.jpg")):
        by_event[image.parent.name].append(image)
    rng = random.Random(args.seed)
    extra_events = set(rng.sample(sorted(by_event), len(by_event) // 3))
    holdout = []
    for event, images in sorted(by_event.items()):
        holdout += rng.sample(images, min(len(images) // 2, 3 if event in extra_events else 2))
    held = set(holdout)
    train = [image for images in by_event.values() for image in images if image not in held]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "valextra_train.txt").write_text("".join(f"{p}\n" for p in train))
    (args.out / "holdout.txt").write_text("".join(f"{p}\n" for p in sorted(holdout)))
    for image in holdout:
        link = args.out / "holdout_wider" / image.parent.name / image.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(image.resolve())
    events = len({image.parent for image in held})
    print(f"{len(train)} training images, {len(holdout)} held out from {events} events")


if __name__ == "__main__":
    main()
