"""Print training throughput (images/second) of faceyolo variants, and peak memory.

One timed "training step" is what `faceyolo train` does per batch: load and augment the batch (mosaic,
affine, HSV, flip), forward, loss, backward, and every `64 / batch` batches an SGD step and an EMA update.
The data are the shared WIDER train pool, converted to YOLO-face labels in a temporary folder.

CPU (the issue's setting; the original: 16.8 / 10.1 / 5.5 img/s for n-0.5 / n / s):
    python benchmarks/train_throughput.py
GPU (batch 64, 640 px, AMP, one worker per core):
    python benchmarks/train_throughput.py --gpu
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from faceyolo.data.convert import ConvertOptions, convert_widerface
from faceyolo.data.dataset import FaceDataset
from faceyolo.data.loader import FaceLoader
from faceyolo.engine.ema import ModelEMA
from faceyolo.engine.loss import FaceLoss
from faceyolo.engine.optim import accumulate_steps, build_optimizer
from faceyolo.engine.train_setup import amp_dtype
from faceyolo.hyp import load_hyp
from faceyolo.models.build import build_model

REPO = Path(__file__).resolve().parents[1]


def measure(variant: str, images_dir: Path, img_size: int, batch: int, workers: int, device: torch.device,
            batches: int, warmup: int) -> tuple[float, float]:
    """Return (images per second, peak memory GiB) over `batches` timed training steps after `warmup`."""
    hyp = load_hyp()
    hyp["cls"] *= 1 / 80
    model = build_model(variant).to(device).train()
    loss_fn = FaceLoss(model, hyp)
    optimizer = build_optimizer(model, "sgd", hyp["lr0"], hyp["momentum"], hyp["weight_decay"])
    ema = ModelEMA(model)
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    accumulate = accumulate_steps(batch)
    dataset = FaceDataset(images_dir, img_size=img_size, augment=True, hyp=hyp, batch_size=batch)
    loader = FaceLoader(dataset, batch, workers=workers, shuffle=True, pin_memory=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    done, start = 0, 0.0
    for epoch in range(10**6):
        loader.set_epoch(epoch)
        for images, targets, _, _ in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
            images = images.to(device, non_blocking=True).float() / 255
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss, _ = loss_fn(model(images), targets.to(device))
            scaler.scale(loss).backward()
            if done % accumulate == 0:
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                ema.update(model)
            done += 1
            if done == warmup + batches:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds = time.perf_counter() - start
                return batches * batch / seconds, _peak_memory_gib(device)
    raise RuntimeError("unreachable")


def _peak_memory_gib(device: torch.device) -> float:
    """Return the peak GPU memory allocated (CUDA), or this process's peak resident memory (CPU), in GiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    """Convert the train pool to a temporary YOLO-face folder, then time each variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    parser.add_argument("--variants", nargs="+", default=["yolov5n-0.5", "yolov5n", "yolov5s"],
                        help="variants to time")
    parser.add_argument("--img-size", type=int, default=320, help="training image size (default 320)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--workers", type=int, default=0, help="data loader workers (default 0)")
    parser.add_argument("--batches", type=int, default=16, help="timed batches per variant (default 16)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU setting: CUDA, batch 64, 640 px, AMP, one worker per core")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    if args.gpu:
        device = torch.device("cuda")
        args.batch, args.img_size, args.workers = 64, 640, os.cpu_count() or 1
    widerface = args.shared / "data" / "widerface"
    with tempfile.TemporaryDirectory() as tmp:
        convert_widerface(widerface / "train_pool" / "images",
                          widerface / "wider_face_split" / "wider_face_val_bbx_gt.txt", tmp,
                          ConvertOptions(split="train"), progress=False)
        images_dir = Path(tmp) / "images" / "train"
        dtype = amp_dtype(device)
        precision = f"AMP {str(dtype).removeprefix('torch.')}" if dtype is not None else "fp32"
        print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
              f"{torch.get_num_threads()} threads), {args.img_size} px, batch {args.batch}, "
              f"workers {args.workers}, {precision}, {args.batches} timed batches")
        for variant in args.variants:
            rate, peak = measure(variant, images_dir, args.img_size, args.batch, args.workers, device,
                                 args.batches, args.warmup)
            memory = "peak GPU memory" if device.type == "cuda" else "peak RSS"
            print(f"{variant:>12}: {rate:7.1f} img/s   {memory} {peak:.2f} GiB")


if __name__ == "__main__":
    main()
