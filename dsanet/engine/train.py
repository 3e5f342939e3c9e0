"""Training runs: model selection, checkpoints, resume, around the step of :mod:`dsanet.engine.step`.

``train(cfg, out_dir)`` runs one training run in ``out_dir`` and returns a :class:`RunResult`
(test metrics of the selected checkpoint, the per-step history, the checkpoint path).

Each iteration (one "step") is one discriminator step, eqs. (12)-(13), then one generator step,
eq. (24) (or 25), on one forward of the step's batch: :class:`dsanet.engine.step.Stepper`. The
run's pieces (data caches, task, model) are built by :mod:`dsanet.engine.build`.

Runs: per-step loss terms are written into a device buffer and read back every
``cfg.log_every`` steps (and before evaluating or saving), so a step never waits on the host; the
NaN guard checks at that read and raises :class:`NonFiniteLoss` naming the first step and term
that became non-finite. Every ``cfg.eval_every`` steps the model is scored on the validation
split (``cfg.select_on == "test"`` scores the test split instead, the published behaviour, with a
warning), ``last.pt`` is written and ``best.pt`` when the score improved; both atomically. A run
resumes from ``last.pt`` with its RNG streams, so an interrupted run ends bit-identical to an
uninterrupted one on the same device (CPU; CUDA kernels may be non-deterministic).
Under ``torchrun`` the same code runs data-parallel (:mod:`dsanet.engine.distributed`).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..config import Config
from . import checkpoint as ckpt
from . import distributed as dist
from . import evaluate as ev
from .build import build_model, build_task, load_splits, seed_everything, set_train_mode
from .device import place_cached, resolve_device, to_device
from .step import TERMS, Stepper
from .step import StepForward, detach_output, modality_accuracy  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

GUARDED = ("adversarial", "metric", "cls", "disc", "total", "grad_norm")  # checked in this order
EVAL_SEED = 0  # evaluation lists and bootstrap do not depend on the training seed
# fields that may differ between a run and its resumption (paths and where it runs)
RESUMABLE_CHANGES = {"device", "num_workers", "data_root", "meta", "voice_root", "face_root",
                     "cache_dir", "name"}


class NonFiniteLoss(RuntimeError):
    """A loss term became NaN or infinite; names the first step and term(s)."""

    def __init__(self, step: int, terms: dict[str, float], checkpoint: Path | None):
        self.step, self.terms, self.checkpoint = step, terms, checkpoint
        what = ", ".join(f"{k}={v}" for k, v in terms.items())
        where = f"; the last finite checkpoint is {checkpoint}" if checkpoint else ""
        super().__init__(f"non-finite loss at step {step}: {what}. Training stopped{where}.")


class ConfigMismatch(ValueError):
    """Resuming a run whose saved config differs from the one given."""


@dataclass
class RunResult:
    metrics: pd.DataFrame | None   # test metrics of the selected checkpoint (None: not finished)
    history: pd.DataFrame          # one row per step: loss terms, lrs, disc accuracy, val metrics
    checkpoint: Path | None        # the selected checkpoint (best.pt, or last.pt when unfinished)
    run_dir: Path
    step: int
    finished: bool
    identity: pd.DataFrame | None = None   # per-identity values of the test cells (evaluate_split)


# ----------------------------------------------------------------------------- the run

class Trainer:
    """One run: data, the stepper, random streams, history, checkpoints, model selection."""

    def __init__(self, cfg: Config, out_dir, progress: bool = True):
        info, device = dist.init(resolve_device(cfg))
        self.cfg, self.info, self.device = cfg, info, device
        self.out_dir, self.progress = Path(out_dir), progress
        self.out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        self.select_split = self._selection_split()
        caches = load_splits(cfg, sorted({"train", self.select_split}), info)
        self.train_set = place_cached(caches["train"], device)
        # the selection split too, when it also fits: validation gathers and normalises on the GPU
        self.select_set = (self.train_set if self.select_split == "train"
                           else place_cached(caches[self.select_split], device))
        self.task = build_task(cfg, self.train_set, device)
        self.model = build_model(cfg, self.task, device)
        if cfg.backbone_train == "frozen":   # the sweep protocol: cached maps, backbones fixed
            from .maps import freeze_backbones, training_maps
            freeze_backbones(self.model)
            maps = training_maps(self.model, self.train_set, cfg, device)
            self.task.attach_maps(maps.to(self.train_set.voices.device))
        self.stepper = Stepper(cfg, self.model, self.task, device, info)
        gdev = self.train_set.voices.device      # same streams on every rank: the global batch
        self.rng = np.random.default_rng([cfg.seed, 1])
        self.batch_gen = torch.Generator(gdev).manual_seed(cfg.seed * 1000 + 2)
        self.step, self.history, self.best = 0, [], {"step": 0, "score": float("-inf")}
        self._buf = torch.zeros(max(1, cfg.log_every), len(TERMS), device=device)
        self._buf_lrs: list[dict] = []

    def _selection_split(self) -> str:
        if self.cfg.select_on == "test":
            warnings.warn("cfg.select_on='test': the checkpoint is chosen on the TEST split (the "
                          "published script's behaviour); its test metrics are optimistic",
                          stacklevel=3)
            return "test"
        if self.cfg.select_on != "val":
            raise ValueError(f"cfg.select_on must be 'val' or 'test', got {self.cfg.select_on!r}")
        return "val"

    @property
    def generators(self) -> dict:
        return {"sampler": self.rng, "batch": self.batch_gen, "dem": self.stepper.dem_gen}

    def _take(self, x: torch.Tensor) -> torch.Tensor:
        return dist.rank_slice(x, self.info)

    def next_batch(self) -> list:
        """This rank's share of the next global batch, on the device."""
        parts = self.task.batch(self.rng, self.batch_gen, self._take, self.step)
        return [to_device(p, self.device) for p in parts]

    def train_step(self) -> torch.Tensor:
        return self.stepper.step(self.next_batch())

    # ------------------------------------------------------------------ history
    def _record(self, row: torch.Tensor, lrs: dict) -> None:
        self._buf[len(self._buf_lrs)] = row
        self._buf_lrs.append(lrs)
        if len(self._buf_lrs) == len(self._buf):
            self.flush()

    def flush(self) -> None:
        """Read the buffered steps back (one host sync), check them, append them to the history."""
        n = len(self._buf_lrs)
        if n == 0:
            return
        rows = dist.all_reduce_mean(self._buf[:n], self.info).cpu().double().numpy()  # (n, T)
        first = self.step - n + 1
        self._check_finite(rows, first)
        for i, lrs in enumerate(self._buf_lrs):
            self.history.append({"step": first + i, **dict(zip(TERMS, rows[i].tolist())), **lrs})
        self._buf_lrs = []

    def _check_finite(self, rows: np.ndarray, first: int) -> None:
        cols = [TERMS.index(t) for t in GUARDED]
        bad = ~np.isfinite(rows[:, cols])                                       # (n, G)
        if bad.any():
            i = int(np.argmax(bad.any(axis=1)))
            terms = {GUARDED[j]: float(rows[i, cols[j]]) for j in np.flatnonzero(bad[i])}
            last = self.out_dir / "last.pt"
            raise NonFiniteLoss(first + i, terms, last if last.exists() else None)

    def history_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.history)

    # ------------------------------------------------------------------ evaluation, checkpoints
    def validate(self) -> dict | None:
        """Score the selection split (rank 0 only) and note it in the last history row."""
        if not self.info.is_main:
            return None
        scores = self.task.validate(self.model, self.select_set, self.cfg, seed=EVAL_SEED)
        set_train_mode(self.model, self.cfg.freeze_bn)
        if self.history and self.history[-1]["step"] == self.step:
            self.history[-1].update(scores)
        return scores

    def state(self) -> dict:
        return {"step": self.step, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
                **self.stepper.state(), "rng": ckpt.rng_state(self.generators),
                "history": self.history_frame().to_dict(orient="list"), "best": dict(self.best)}

    def save(self, improved: bool) -> None:
        """``last.pt`` (full state), ``best.pt`` (model) when ``improved``, ``history.csv``."""
        if not self.info.is_main:
            return
        state = self.state()
        ckpt.save_checkpoint(state, self.out_dir / "last.pt")
        if improved:
            ckpt.save_checkpoint({k: state[k] for k in ("step", "config", "model", "best")},
                                 self.out_dir / "best.pt")
        self.history_frame().to_csv(self.out_dir / "history.csv", index=False)

    def evaluate_and_save(self) -> None:
        self.flush()
        scores = self.validate()
        improved = scores is not None and scores["val_score"] > self.best["score"]
        if improved:
            self.best = {"step": self.step, "score": scores["val_score"]}
        self.save(improved)
        dist.barrier(self.info)

    def resume(self) -> bool:
        """Restore ``last.pt`` of the run folder when there is one; True when resumed.

        Any device: the file is read onto the CPU and ``load_state_dict`` copies the weights and
        optimiser states to this run's device, whatever the one they were saved from (no second
        copy of the checkpoint on the GPU, and Adam's step counts stay on the host, as in a fresh
        run); the random states are restored from CPU copies, and a generator saved on another
        device type (the cache placed elsewhere) is reseeded with a warning (rule:
        :mod:`dsanet.engine.checkpoint`)."""
        path = self.out_dir / "last.pt"
        if not path.exists():
            return False
        state = ckpt.load_checkpoint(path, map_location="cpu")
        check_resumable(Config.from_dict(state["config"]), self.cfg, path)
        self.model.load_state_dict(state["model"])
        self.stepper.load_state(state)
        if self.info.is_main:  # other ranks: the shared sampling streams; DEM restarts from its seed
            ckpt.set_rng_state(state["rng"], self.generators)
        else:
            ckpt.set_rng_state(state["rng"], {k: self.generators[k] for k in ("sampler", "batch")})
        self.step, self.best = int(state["step"]), dict(state["best"])
        self.history = pd.DataFrame(state["history"]).to_dict(orient="records")
        log.info("resumed %s at step %d", path, self.step)
        return True

    # ------------------------------------------------------------------ loop
    def run(self, max_steps: int | None = None, on_step: Callable[[int], None] | None = None) -> bool:
        """Train until ``cfg.steps`` (or ``max_steps`` more steps); True when the run is complete."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        stop = cfg.steps if max_steps is None else min(cfg.steps, self.step + max_steps)
        bar = tqdm(total=cfg.steps, initial=self.step, desc=cfg.name, dynamic_ncols=True,
                   disable=None if (self.progress and self.info.is_main) else True)
        set_train_mode(self.model, cfg.freeze_bn)
        try:
            while self.step < stop:
                lrs = self.stepper.lrs()
                row = self.train_step()
                self.step += 1
                self._record(row, lrs)
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    self.evaluate_and_save()
                bar.update(1)
                if self.history and not bar.disable and self.history[-1]["step"] == self.step:
                    bar.set_postfix(_postfix(self.history[-1]), refresh=False)
                if on_step is not None:
                    on_step(self.step)
            if self.step % cfg.eval_every and self.step != cfg.steps:  # stopped between evaluations
                self.flush()
                self.save(improved=False)
        finally:
            bar.close()
        return self.step >= cfg.steps

    # ------------------------------------------------------------------ final evaluation
    def test_metrics(self) -> ev.Evaluation | None:
        """Load the selected checkpoint and evaluate it on the test split (rank 0): the tidy
        table (``.metrics``) and the per-identity values (``.identity``)."""
        if not self.info.is_main:
            return None
        best = self.out_dir / "best.pt"
        if best.exists():
            self.model.load_state_dict(ckpt.load_checkpoint(best, self.device)["model"])
        test = load_splits(self.cfg, ["test"], dist.DistInfo())["test"]
        return ev.evaluate_split(self.model, test, self.cfg, seed=EVAL_SEED)


def _postfix(row: dict) -> dict:
    keys = ("total", "adversarial", "metric", "cls", "disc_acc", "val_score")
    return {k: f"{row[k]:.3f}" for k in keys if k in row and row[k] == row[k]}


def check_resumable(saved: Config, cfg: Config, path: Path) -> None:
    """Refuse to resume a run with different settings (paths and device may change).

    ``steps`` may grow: a run (finished or not) then continues to the new total, with the
    learning-rate schedule of the new total from the resumed step on.
    """
    a, b = saved.to_dict(), cfg.to_dict()
    diff = sorted(k for k in a if k not in RESUMABLE_CHANGES and a[k] != b.get(k)
                  and not (k == "steps" and b.get(k) is not None and b[k] > a[k]))
    if diff:
        shown = ", ".join(f"{k}: {a[k]!r} -> {b.get(k)!r}" for k in diff[:8])
        raise ConfigMismatch(f"{path}: cannot resume, the config differs ({shown}); "
                             "use another run folder or resume=False (--no-resume)")


def train(cfg: Config, out_dir, resume: bool = True, progress: bool = True,
          max_steps_this_call: int | None = None,
          on_step: Callable[[int], None] | None = None) -> RunResult:
    """Train ``cfg`` in ``out_dir`` (resuming from its ``last.pt``), then test the best checkpoint.

    ``max_steps_this_call`` stops after that many steps (``last.pt`` is written; call again to
    go on). ``on_step(step)`` is called after every step (tests use it to simulate a crash).
    Returns test metrics (``None`` until the run is complete, and on ranks other than 0).
    """
    trainer = Trainer(cfg, out_dir, progress=progress and cfg.profile != "smoke")
    if resume:
        trainer.resume()
    elif trainer.info.is_main:
        clear_run(trainer.out_dir)
    finished = trainer.run(max_steps_this_call, on_step)
    tested = trainer.test_metrics() if finished else None
    best = trainer.out_dir / ("best.pt" if finished else "last.pt")
    return RunResult(metrics=tested.metrics if tested is not None else None,
                     history=trainer.history_frame(),
                     checkpoint=best if best.exists() else None, run_dir=trainer.out_dir,
                     step=trainer.step, finished=finished,
                     identity=tested.identity if tested is not None else None)


def clear_run(out_dir: Path) -> None:
    """Remove the checkpoints and history of an earlier run in ``out_dir`` (a fresh start)."""
    for name in ("last.pt", "best.pt", "history.csv"):
        if (out_dir / name).exists():
            log.info("%s: starting afresh, removing %s", out_dir, name)
            (out_dir / name).unlink()


def evaluate_checkpoint(path, **overrides) -> tuple[pd.DataFrame, Config, int]:
    """Test metrics of a checkpoint: ``(metrics, config, step)``.

    ``overrides`` change the saved config (e.g. ``data_root``, ``device``, ``eval_tuples``).
    """
    model, cfg, state = ckpt.load_network(path, **overrides)
    test = load_splits(cfg, ["test"], dist.DistInfo())["test"]
    return ev.evaluate(model, test, cfg, seed=EVAL_SEED), cfg, int(state["step"])
