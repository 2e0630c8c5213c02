"""`faceyolo train`: the training loop of SPEC §4 — warm-up, accumulation, AMP, EMA, per-epoch validation,
atomic checkpoints with the full training state, resume, DDP, and out-of-memory recovery.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from faceyolo.engine import checkpoint as ckpt
from faceyolo.engine import distributed as dist_utils
from faceyolo.engine.ema import ModelEMA, unwrap
from faceyolo.engine.loss import FaceLoss
from faceyolo.engine.optim import (
    accumulate_steps,
    apply_warmup,
    build_optimizer,
    lr_factor,
    scaled_weight_decay,
    set_learning_rate,
    warmup_iterations,
    warmup_note,
)
from faceyolo.engine.train_config import DEFAULT_BATCH_SIZE, TrainConfig
from faceyolo.engine.train_data import TrainData, random_rescale
from faceyolo.engine.train_log import LOSS_NAMES, ResultsLog, progress_header, progress_line
from faceyolo.engine.train_setup import STATE_FILE, amp_dtype, check_img_size, make_model, resume_state_path
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_text, new_run_dir


@dataclass
class TrainResult:
    """Where a finished run left its files, and how far it got."""

    run_dir: Path
    epochs: int
    best_fitness: float
    last: Path
    best: Path
    is_main: bool = True  # False on the other processes of a torchrun run, which neither log nor save


def train(config: TrainConfig, log=print) -> TrainResult:
    """Return the result of training as `config` says (single process, or one rank under torchrun)."""
    info = dist_utils.dist_info_from_env()
    device = dist_utils.select_device(config.device, info)
    dist_utils.init_process_group(info, device)
    try:
        return Trainer(config, info, device, log if info.is_main else (lambda *_: None)).run()
    finally:
        dist_utils.cleanup(info)


class Trainer:
    """One training run: set up in `__init__` (fresh or resumed), then `run()` the remaining epochs."""

    def __init__(self, config: TrainConfig, info: dist_utils.DistInfo, device: torch.device, log):
        self.info, self.device, self.log = info, device, log
        state = self._resume_state(config)
        config = self.config
        self._seed(config.seed + info.rank)
        model = self._build_model(state)
        if state is None:  # only once the inputs proved usable, so a typo leaves no empty run folder
            run_dir = str(new_run_dir(config.project, config.name)) if info.is_main else ""
            self.run_dir = Path(dist_utils.broadcast_from_main(run_dir, info))
        self.weights_dir = self.run_dir / "weights"
        self.amp_dtype = amp_dtype(device)
        self.batch_size = self._total_batch(model, state)
        self.data = TrainData(self.data_config, self.img_size, self.batch_size, int(model.stride.max()),
                              self.hyp, config, info, device)
        if state is None and config.autoanchor and info.is_main:
            log(self.data.check_anchors(model.detect, self.hyp["anchor_t"], config.seed))

        if config.sync_bn and (device.type != "cuda" or not info.distributed):
            log("warning: --sync-bn needs several GPUs under torchrun; BatchNorm stays per process")
        self.model = dist_utils.wrap_model(model, info, device, config.sync_bn)
        self.nominal_accumulate = accumulate_steps(self.batch_size, config.nominal_batch)
        wd = scaled_weight_decay(self.hyp["weight_decay"], self.batch_size, self.nominal_accumulate,
                                 config.nominal_batch)
        self.optimizer = build_optimizer(unwrap(self.model), config.optimizer, self.hyp["lr0"],
                                         self.hyp["momentum"], wd)
        self.lf = lr_factor(config.epochs, self.hyp["lrf"], config.cos_lr)
        self.ema = ModelEMA(unwrap(self.model)) if info.is_main else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.loss_fn = FaceLoss(unwrap(self.model), self.hyp)
        self.start_epoch, self.best_fitness, self.micro_batches = 0, -1.0, 1
        if state is not None:
            self._restore(state)
        self.results = ResultsLog(self.run_dir) if info.is_main else None
        if self.results is not None:
            self.results.keep_until(self.start_epoch - 1)
            self._save_config()

    def _resume_state(self, config: TrainConfig) -> ckpt.TrainingState | None:
        """Return the resumed run's saved state (None for a new run); set `self.config` (and `run_dir`)."""
        state = None
        if config.resume is not None:
            state_path = resume_state_path(config.resume, config.project)
            state = ckpt.load_training_state(state_path)
            missing = [key for key in ("config", "batch_size", "micro_batches") if key not in state.extra]
            if missing or not isinstance(state.extra["config"], dict):
                what = missing[0] if missing else "config"
                raise FaceyoloError(f"{state_path}: damaged training state (no run {what})")
            requested_batch = config.batch_size
            config = TrainConfig.from_dict(state.extra["config"])
            config.batch_size = requested_batch  # None keeps the run's own batch size
            self.run_dir = state_path.parent.parent
            self.log(f"resuming {self.run_dir} after epoch {state.epoch + 1}/{config.epochs}")
        self.config = config.validate()
        return state

    def _build_model(self, state: ckpt.TrainingState | None):
        """Return the model on the device; set the data config, hyperparameters and image size."""
        from faceyolo.data.config import load_data_config
        from faceyolo.hyp import load_hyp

        config = self.config
        self.data_config = load_data_config(config.data)
        nc = self.data_config.nc
        self.hyp = load_hyp(config.hyp)
        self.hyp["cls"] *= nc / 80  # SPEC §3.7: class gain scaled by the number of classes
        # On resume the saved state replaces every tensor, so nothing is transferred.
        model, notes = make_model(config.model, nc, self.data_config.names, config.activation,
                                  config.weights if state is None else None)
        for note in notes:
            self.log(note)
        self.img_size, warning = check_img_size(config.img_size, int(model.stride.max()))
        if warning:
            self.log(f"warning: {warning}")
        model.meta["img_size"] = self.img_size
        return model.to(self.device)

    def _total_batch(self, model, state) -> int:
        """Return the total batch size: the config's, the resumed run's, or an automatic one."""
        if self.config.batch_size is None:
            return int(state.extra["batch_size"]) if state is not None else DEFAULT_BATCH_SIZE
        if state is not None and self.config.batch_size != state.extra["batch_size"]:
            self.log(f"batch size {self.config.batch_size} instead of the run's {state.extra['batch_size']}")
        if self.config.batch_size != -1:
            return self.config.batch_size
        from faceyolo.engine.autobatch import auto_batch_size

        loss_fn = FaceLoss(model, self.hyp) if self.device.type == "cuda" else None
        per_process, report = auto_batch_size(model, self.img_size, self.device, loss_fn,
                                              amp_dtype=self.amp_dtype)
        self.log(report)
        if self.info.distributed:
            value = torch.tensor([per_process], device=self.device)
            torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MIN)
            per_process = int(value.item())
        return per_process * self.info.world_size

    def nominal_batch(self) -> int:
        """Return the number of images whose gradients one optimizer step combines after warm-up."""
        return self.nominal_accumulate * self.batch_size

    def _seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _restore(self, state: ckpt.TrainingState) -> None:
        """Load model, EMA, optimizer, scaler and RNG states; continue after the saved epoch."""
        unwrap(self.model).load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        if state.scaler:
            self.scaler.load_state_dict(state.scaler)
        if self.ema is not None:
            self.ema.ema.load_state_dict(state.ema)
            self.ema.updates = state.ema_updates
        self.start_epoch, self.best_fitness = state.epoch + 1, state.best_fitness
        if self.batch_size == state.extra["batch_size"]:  # a new batch size starts whole again
            self.micro_batches = int(state.extra["micro_batches"])
        if len(state.rng) == self.info.world_size:
            ckpt.restore_rng(state.rng[self.info.rank])
        else:
            self.log(f"the run was saved by {len(state.rng)} process(es) and continues in "
                     f"{self.info.world_size}: random generators re-seeded")
            self._seed(self.config.seed + self.info.rank + self.start_epoch)

    def _save_config(self) -> None:
        resolved = {**self.config.to_dict(), "hyp": self.hyp, "img_size": self.img_size,
                    "batch_size": self.batch_size, "world_size": self.info.world_size,
                    "device": str(self.device)}
        atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    def run(self) -> TrainResult:
        """Return the result after training the remaining epochs, validating and saving after each."""
        config = self.config
        nb = self.data.batches_per_epoch()
        warmup_iters = warmup_iterations(self.hyp["warmup_epochs"], nb, config.min_warmup_iters)
        self.log(f"training epochs {self.start_epoch + 1}-{config.epochs}: {self.data.describe()}; "
                 f"batch {self.batch_size} (nominal {self.nominal_batch()}), img size {self.img_size}, "
                 f"device {self.device}, run folder {self.run_dir}")
        if warmup_iters:
            self.log(warmup_note(warmup_iters, nb, config.epochs))
        for epoch in range(self.start_epoch, config.epochs):
            started = time.monotonic()
            mean_losses = self._train_epoch(epoch, nb, warmup_iters)
            rng = dist_utils.gather_to_main(ckpt.capture_rng(), self.info)
            if self.info.is_main:
                self._end_epoch(epoch, mean_losses, rng, started)
            dist_utils.barrier(self.info)
        if self.info.is_main:
            self._finish()
        weights = self.weights_dir
        return TrainResult(self.run_dir, config.epochs, self.best_fitness, last=weights / "last.safetensors",
                           best=weights / "best.safetensors", is_main=self.info.is_main)

    def _train_epoch(self, epoch: int, nb: int, warmup_iters: int) -> torch.Tensor:
        """Return the epoch's mean loss terms (box, obj, cls, landmark, total) after training one epoch."""
        model = self.model.train()
        target_lr = self.hyp["lr0"] * self.lf(epoch)
        set_learning_rate(self.optimizer, target_lr)
        accumulate = self.nominal_accumulate
        mean_losses = torch.zeros(len(LOSS_NAMES))
        batches = itertools.islice(self.data.train_batches(epoch), nb)
        bar = tqdm(batches, total=nb, disable=not self.info.is_main, bar_format="{l_bar}{bar:10}{r_bar}")
        if self.info.is_main:
            self.log(progress_header())
        self.optimizer.zero_grad(set_to_none=True)
        for i, (images, targets, _paths, _shapes) in enumerate(bar):
            ni = i + nb * epoch
            if warmup_iters and ni <= warmup_iters:
                accumulate = apply_warmup(self.optimizer, ni, warmup_iters, target_lr, self.hyp,
                                          self.batch_size, self.config.nominal_batch)
            images = images.to(self.device, non_blocking=True).float() / 255
            if self.config.multi_scale:
                images = random_rescale(images, self.img_size, int(unwrap(model).stride.max()))
            terms = self._forward_backward(images, targets.to(self.device), epoch, i)
            if ni % accumulate == 0:
                self._optimizer_step()
            mean_losses = (mean_losses * i + terms) / (i + 1)
            bar.set_description(progress_line(epoch, self.config.epochs, mean_losses, len(targets),
                                              images.shape[-1]))
        bar.close()
        return mean_losses

    def _forward_backward(self, images: torch.Tensor, targets: torch.Tensor, epoch: int, batch: int):
        """Return the batch's loss terms after back-propagating it, in micro-batches after a CUDA OOM."""
        while True:
            try:
                return self._micro_batched_backward(images, targets, epoch, batch)
            except torch.cuda.OutOfMemoryError:
                per_forward = math.ceil(images.shape[0] / self.micro_batches)
                where = (f"CUDA out of memory at epoch {epoch + 1}, batch {batch} with {per_forward} "
                         "image(s) per forward")
                if self.info.distributed:
                    # The other processes wait in this batch's gradient all-reduce: they cannot re-split it.
                    smaller = max(self.batch_size // 2, self.info.world_size)
                    raise FaceyoloError(f"{where} on rank {self.info.rank}: continue from the last epoch "
                                        f"with torchrun ... -m faceyolo train --resume {self.run_dir} "
                                        f"--batch-size {smaller}") from None
                if per_forward <= 1:
                    raise FaceyoloError(f"{where}: lower --batch-size or --img-size") from None
                # Gradients of a partly back-propagated batch are unreliable: drop them and redo the batch.
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                self.micro_batches *= 2
                self.log(f"CUDA out of memory at {per_forward} images per forward: continuing with "
                         f"{math.ceil(images.shape[0] / self.micro_batches)} per forward and accumulating "
                         f"their gradients, so the nominal batch stays {self.nominal_batch()}")

    def _micro_batched_backward(self, images, targets, epoch: int, batch: int) -> torch.Tensor:
        """Return the loss terms of `images` after back-propagating it in `self.micro_batches` chunks."""
        total_images = images.shape[0]
        terms = torch.zeros(len(LOSS_NAMES), device=self.device)
        chunk = math.ceil(total_images / self.micro_batches)
        for start in range(0, total_images, chunk):
            part = images[start:start + chunk]
            rows = (targets[:, 0] >= start) & (targets[:, 0] < start + len(part))
            part_targets = targets[rows] - torch.eye(1, targets.shape[1], device=targets.device) * start
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                loss, items = self.loss_fn(self.model(part), part_targets)
            if self.info.distributed:
                loss = loss * self.info.world_size
            part_terms = torch.stack([items[name] for name in LOSS_NAMES])
            if not torch.isfinite(part_terms).all():
                values = ", ".join(f"{n} {float(v):.4g}" for n, v in zip(LOSS_NAMES, part_terms, strict=True))
                raise FaceyoloError(f"loss is not finite at epoch {epoch + 1}, batch {batch} ({values}); "
                                    f"stopping. The last good checkpoint is {self.weights_dir / STATE_FILE}")
            self.scaler.scale(loss).backward()
            terms += part_terms * (len(part) / total_images)
        return terms.cpu()

    def _optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    def _end_epoch(self, epoch: int, mean_losses: torch.Tensor, rng: list[dict], started: float) -> None:
        """Validate the EMA model, log the epoch's row, save best/last weights and the training state.

        rng: every process's random generator states after the epoch's training, in rank order; started: the
        epoch's start on time.monotonic(), for its time/epoch_s column (training and validation).
        """
        metrics = self.data.validate(self.ema.ema, self.loss_fn)
        fitness = 0.1 * metrics["metrics/mAP50"] + 0.9 * metrics["metrics/mAP50-95"]
        losses = {f"train/{n}": float(v) for n, v in zip(LOSS_NAMES, mean_losses, strict=True)}
        lrs = {f"lr/{g['name']}": g["lr"] for g in self.optimizer.param_groups}
        seconds = round(time.monotonic() - started, 2)
        row = {"epoch": epoch, **losses, **metrics, **lrs, "time/epoch_s": seconds}
        self.results.add(row)
        self.log(f"epoch {epoch + 1} val: {self.data.last_validation.line()}")
        from faceyolo.weights import save_weights

        summary = {"training": {"epoch": epoch + 1, "epochs": self.config.epochs, "fitness": fitness,
                                "metrics": metrics, "data": self.config.data, "img_size": self.img_size}}
        save_weights(self.ema.ema, self.weights_dir / "last.safetensors", summary)
        if fitness > self.best_fitness:
            self.best_fitness = fitness
            save_weights(self.ema.ema, self.weights_dir / "best.safetensors", summary)
        extra = {"config": {**self.config.to_dict(), "resume": None}, "batch_size": self.batch_size,
                 "micro_batches": self.micro_batches}
        state = ckpt.TrainingState(
            epoch=epoch, best_fitness=self.best_fitness, model=unwrap(self.model).state_dict(),
            ema=self.ema.ema.state_dict(), ema_updates=self.ema.updates,
            optimizer=self.optimizer.state_dict(), scaler=self.scaler.state_dict(), rng=rng,
            extra=extra)
        ckpt.save_training_state(self.weights_dir / STATE_FILE, state)

    def _finish(self) -> None:
        """Write the plots and close the logs."""
        from faceyolo.engine.train_plots import plot_results

        plot_results(self.results.rows, self.run_dir / "results.png")
        self.data.save_curves(self.run_dir, unwrap(self.model).names)
        self.results.close()
        self.log(f"done: {self.config.epochs} epochs, best fitness {self.best_fitness:.4f}; "
                 f"weights in {self.weights_dir}")
