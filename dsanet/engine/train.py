"""Training: the alternating game of eqs. (12)-(13) and (24) / (25), model selection, resume.

``train(cfg, out_dir)`` runs one training run in ``out_dir`` and returns a :class:`RunResult`
(test metrics of the selected checkpoint, the per-step history, the checkpoint path).

Each iteration (one "step"):

1. one forward of the generator side (backbones -> DEM streams -> shared generator -> heads) on
   the step's batch (:mod:`dsanet.engine.matching` / :mod:`dsanet.engine.retrieval`);
2. discriminator step, eqs. (12)-(13): the discriminator scores the DETACHED embeddings of every
   stream; only its parameters receive gradients and step, then the adversarial kind's
   post-step hook runs (:mod:`dsanet.variants`; WGAN: weights clipped to ``cfg.wgan_clip``);
3. generator step, eq. (24) (or 25) over all streams: the (just updated) discriminator is frozen
   (``requires_grad`` off, so it gets no gradient), everything else steps; the global gradient
   norm is clipped to ``cfg.grad_clip`` (``None``: off) before the step.

Reusing the step-1 forward for both updates costs one forward instead of two and changes
nothing but the random draws: the generator side does not move during the discriminator step
(the published script freezes it there), so a second forward would compute the same embeddings
up to new dropout masks and DEM blocks.

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

import dataclasses
import logging
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import losses, variants
from ..config import Config
from . import checkpoint as ckpt
from . import distributed as dist
from . import evaluate as ev
from .device import autocast, place_cached, resolve_device, to_device
from .matching import InBatchMatchingTask, MatchingTask
from .optim import build_optimizers, build_schedulers, group_lrs
from .retrieval import RetrievalTask

log = logging.getLogger(__name__)

TERMS = ("total", "adversarial", "metric", "cls", "disc", "disc_acc", "grad_norm")
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


# ----------------------------------------------------------------------------- set-up helpers

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_splits(cfg: Config, splits, info: dist.DistInfo) -> dict:
    """Decoded caches of ``splits`` (rank 0 builds them first under DDP; the others then read)."""
    from ..data.cache import build_cache
    from ..data.layout import load_index

    if info.enabled and not info.is_main:
        dist.barrier(info)
    index = load_index(cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root)
    import sys  # a decoding progress bar only on a terminal, never in smoke
    bar = info.is_main and cfg.profile != "smoke" and sys.stderr.isatty()
    out = {s: build_cache(index, cfg, s, progress=bar) for s in splits}
    if info.enabled and info.is_main:
        dist.barrier(info)
    return out


def build_task(cfg: Config, cached, device):
    if cfg.task == "matching":
        return (InBatchMatchingTask if cfg.sampling == "batch" else MatchingTask)(cfg, cached, device)
    if cfg.task == "retrieval":
        return RetrievalTask(cfg, cached, device)
    raise ValueError(f"unknown cfg.task {cfg.task!r}; choose 'matching' or 'retrieval'")


def build_model(cfg: Config, task, device: torch.device) -> nn.Module:
    """DSANet for ``cfg`` on ``device``, seeded, with the task's unused heads frozen."""
    from ..models.dsanet import DSANet

    torch.manual_seed(cfg.seed)
    model = DSANet(cfg)
    if hasattr(task, "prepare"):
        task.prepare(model)
    for m in task.unused_modules(model):
        m.requires_grad_(False)
    model = model.to(device)
    if device.type == "cuda":  # NHWC weights: cuDNN runs the backbones channels-last (input converted once)
        model.face_backbone.to(memory_format=torch.channels_last)
        model.voice_backbone.to(memory_format=torch.channels_last)
    return model


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """``model.train()``; with ``freeze_bn`` BatchNorm layers keep using their running statistics."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def detach_output(out):
    """A copy of a model output dataclass with every tensor detached."""
    return dataclasses.replace(out, **{f.name: getattr(out, f.name).detach()
                                       for f in dataclasses.fields(out)
                                       if isinstance(getattr(out, f.name), torch.Tensor)})


def modality_accuracy(z: torch.Tensor, modality: torch.Tensor, kind: str | None = None) -> torch.Tensor:
    """Discriminator accuracy on outputs z (S, M, C) for modality (M,) (face 0, voice 1).

    ``kind`` (``cfg.adversarial``): its registered read-out turns z into voice predictions
    (dsanet.variants.ADVERSARIAL); None: argmax for C = 2, a critic's score > 0 for C = 1.
    """
    if kind is not None:
        readout = variants.get("adversarial", kind).readout
    else:
        readout = variants.argmax_readout if z.shape[-1] == 2 else variants.critic_readout
    pred = readout(z).long()                                                  # (S, M), voice = 1
    return (pred == modality).float().mean()


class StepForward(nn.Module):
    """What DDP wraps: one call runs ``model.<method>`` on every part of a step's batch."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, method: str, parts: list[tuple], generator: torch.Generator | None):
        fn = getattr(self.model, method)
        return [fn(*args, generator=generator) for args in parts]


# ----------------------------------------------------------------------------- one iteration

class Stepper:
    """The two updates of one iteration (eqs. 12-13, then 24 / 25), whatever feeds the batches.

    Holds the model, its DDP-wrapped generator side (``forward``), both optimisers and schedules,
    and the DEM random stream of this rank. ``step(parts)`` takes a batch as the task's parts
    ``[(model inputs, target), ...]`` already on the device.
    """

    def __init__(self, cfg: Config, model: nn.Module, task, device: torch.device,
                 info: dist.DistInfo = dist.DistInfo()):
        self.cfg, self.model, self.task, self.device, self.info = cfg, model, task, device, info
        if cfg.sync_bn:
            for name in ("face_backbone", "voice_backbone", "generator", "classifier"):
                setattr(model, name, dist.convert_sync_bn(getattr(model, name), device, info))
        disc_params = model.discriminator_parameters()
        for p in disc_params:  # kept outside the DDP wrapper: DDP registers only trainable params
            p.requires_grad_(False)
        self.forward = dist.wrap(StepForward(model), info, device)
        dist.broadcast_parameters(model.discriminator, info)
        for p in disc_params:
            p.requires_grad_(cfg.adversarial != "none")
        self.opt_gen, self.opt_disc = build_optimizers(model, cfg, device)
        self.schedulers = build_schedulers([self.opt_gen, self.opt_disc], cfg)
        self.gen_params = [p for g in self.opt_gen.param_groups for p in g["params"]]
        self.disc_params = [p for p in disc_params if p.requires_grad]
        model.discriminator.requires_grad_(False)
        self.dem_gen = torch.Generator(device).manual_seed(cfg.seed * 1000 + 3 + info.rank)

    def lrs(self) -> dict[str, float]:
        return group_lrs([self.opt_gen, self.opt_disc])

    def step(self, parts) -> torch.Tensor:
        """One discriminator step and one generator step -> (len(TERMS),) row on the device."""
        with autocast(self.device, self.cfg.amp):
            outs = self.forward(self.task.method, [args for args, _ in parts], self.dem_gen)
        disc, acc = self.discriminator_step(outs)
        terms, grad_norm = self.generator_step(outs, [t for _, t in parts])
        for s in self.schedulers:
            if s is not None:
                s.step()
        return torch.stack([terms["total"], terms["adversarial"], terms["metric"], terms["cls"],
                            disc, acc, grad_norm]).detach().float()

    def discriminator_step(self, outs) -> tuple[torch.Tensor, torch.Tensor]:
        """Eqs. (12)-(13) on detached embeddings; only the discriminator steps. -> (loss, accuracy)."""
        if self.opt_disc is None:
            zero = torch.zeros((), device=self.device)
            return zero, torch.full((), float("nan"), device=self.device)
        disc = self.model.discriminator
        disc.requires_grad_(True)
        loss, acc = 0.0, 0.0
        with autocast(self.device, self.cfg.amp):
            for out in outs:
                out = detach_output(out)
                h, modality = self.task.items(out)                          # (S, M, D), (M,)
                z = losses.discriminator_logits(self.cfg, out, disc)        # (S, M, C), per cfg.gen_calls
                loss = loss + losses.discriminator_total(self.cfg, out, z)
                acc = acc + modality_accuracy(z, modality, self.cfg.adversarial)
        loss, acc = loss / len(outs), acc / len(outs)
        self.opt_disc.zero_grad(set_to_none=True)
        loss.backward()
        dist.average_gradients(self.disc_params, self.info)
        self.opt_disc.step()
        self.opt_disc.zero_grad(set_to_none=True)
        post_step = variants.get("adversarial", self.cfg.adversarial).post_step
        if post_step is not None:  # e.g. WGAN's weight clipping
            with torch.no_grad():
                post_step(self.disc_params, self.cfg)
        disc.requires_grad_(False)
        return loss.detach(), acc.detach()

    def generator_step(self, outs, targets) -> tuple[dict, torch.Tensor]:
        """Eq. (24) / (25) over all streams, discriminator frozen, gradient norm clipped.

        -> (loss terms averaged over the parts, gradient norm before clipping).
        """
        with autocast(self.device, self.cfg.amp):
            per_part = [self.task.generator_loss(o, t, self.model) for o, t in zip(outs, targets)]
        terms = {k: sum(p[k] for p in per_part) / len(per_part) for k in per_part[0]}
        self.opt_gen.zero_grad(set_to_none=True)
        terms["total"].backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.gen_params, max_norm)
        self.opt_gen.step()
        return terms, grad_norm

    def state(self) -> dict:
        return {"optimizers": {"generator": self.opt_gen.state_dict(), "discriminator":
                               None if self.opt_disc is None else self.opt_disc.state_dict()},
                "schedulers": [None if s is None else s.state_dict() for s in self.schedulers]}

    def load_state(self, state: dict) -> None:
        self.opt_gen.load_state_dict(state["optimizers"]["generator"])
        if self.opt_disc is not None:
            self.opt_disc.load_state_dict(state["optimizers"]["discriminator"])
        for s, sd in zip(self.schedulers, state["schedulers"]):
            if s is not None:
                s.load_state_dict(sd)


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
        self.select_set = caches[self.select_split]
        self.task = build_task(cfg, self.train_set, device)
        self.model = build_model(cfg, self.task, device)
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
        parts = self.task.batch(self.rng, self.batch_gen, self._take)
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
        """Restore ``last.pt`` of the run folder when there is one; True when resumed."""
        path = self.out_dir / "last.pt"
        if not path.exists():
            return False
        state = ckpt.load_checkpoint(path, map_location=self.device)
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
    def test_metrics(self) -> pd.DataFrame | None:
        """Load the selected checkpoint and evaluate it on the test split (rank 0)."""
        if not self.info.is_main:
            return None
        best = self.out_dir / "best.pt"
        if best.exists():
            self.model.load_state_dict(ckpt.load_checkpoint(best, self.device)["model"])
        test = load_splits(self.cfg, ["test"], dist.DistInfo())["test"]
        return ev.evaluate(self.model, test, self.cfg, seed=EVAL_SEED)


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
    metrics = trainer.test_metrics() if finished else None
    best = trainer.out_dir / ("best.pt" if finished else "last.pt")
    return RunResult(metrics=metrics, history=trainer.history_frame(),
                     checkpoint=best if best.exists() else None, run_dir=trainer.out_dir,
                     step=trainer.step, finished=finished)


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
    from ..models.dsanet import DSANet

    state = ckpt.load_checkpoint(path)
    cfg = Config.from_dict(state["config"]).replace(**overrides)
    device = resolve_device(cfg)
    model = DSANet(cfg)
    if "centres" in state["model"]:
        model.init_centres(state["model"]["centres"].shape[1])
    model.load_state_dict(state["model"])
    model.to(device)
    test = load_splits(cfg, ["test"], dist.DistInfo())["test"]
    return ev.evaluate(model, test, cfg, seed=EVAL_SEED), cfg, int(state["step"])
