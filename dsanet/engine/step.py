"""One training iteration: the alternating game of eqs. (12)-(13) and (24) / (25).

:class:`Stepper` holds the model, its DDP-wrapped generator side, both optimisers and schedules,
and runs one step (used by :class:`dsanet.engine.train.Trainer` and the benchmarks):

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

A step returns its loss terms as one ``(len(TERMS),)`` row on the device (:data:`TERMS`).

Mixed precision (``cfg.amp``, CUDA only): "bf16" autocasts the forward and the losses; "fp16"
does too and scales each update's loss with its own ``torch.amp.GradScaler`` (one for the
discriminator, one for the generator side; saved in the checkpoint). An fp16 step whose gradients
overflow at the current scale is skipped by its scaler (which lowers the scale); its ``grad_norm``
is then reported as 0, not as the non-finite norm, so the NaN guard stops only real divergence.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .. import losses, variants
from ..config import Config
from . import distributed as dist
from .device import autocast, grad_scaler
from .optim import build_optimizers, build_schedulers, group_lrs

TERMS = ("total", "adversarial", "metric", "cls", "disc", "disc_acc", "grad_norm")


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
        # fp16 on CUDA: a loss scaler per update; None otherwise (bf16, off, CPU)
        self.scalers = {"generator": grad_scaler(device, cfg.amp),
                        "discriminator": grad_scaler(device, cfg.amp)}

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
        scaler = self.scalers["discriminator"]
        (loss if scaler is None else scaler.scale(loss)).backward()
        dist.average_gradients(self.disc_params, self.info)
        if scaler is None:
            self.opt_disc.step()
        else:
            scaler.step(self.opt_disc)
            scaler.update()
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
        scaler = self.scalers["generator"]
        (terms["total"] if scaler is None else scaler.scale(terms["total"])).backward()
        if scaler is not None:
            scaler.unscale_(self.opt_gen)          # clip the true gradient
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.gen_params, max_norm)
        if scaler is None:
            self.opt_gen.step()
        else:   # skips the step on inf / NaN gradients; report that step's norm as 0
            scaler.step(self.opt_gen)
            scaler.update()
            grad_norm = torch.where(torch.isfinite(grad_norm), grad_norm, torch.zeros_like(grad_norm))
        return terms, grad_norm

    def state(self) -> dict:
        return {"optimizers": {"generator": self.opt_gen.state_dict(), "discriminator":
                               None if self.opt_disc is None else self.opt_disc.state_dict()},
                "schedulers": [None if s is None else s.state_dict() for s in self.schedulers],
                **({"scalers": {k: s.state_dict() for k, s in self.scalers.items()}}
                   if self.scalers["generator"] is not None else {})}

    def load_state(self, state: dict) -> None:
        self.opt_gen.load_state_dict(state["optimizers"]["generator"])
        if self.opt_disc is not None:
            self.opt_disc.load_state_dict(state["optimizers"]["discriminator"])
        for s, sd in zip(self.schedulers, state["schedulers"]):
            if s is not None:
                s.load_state_dict(sd)
        for k, sd in (state.get("scalers") or {}).items():   # fp16 runs
            if self.scalers.get(k) is not None:
                self.scalers[k].load_state_dict(sd)
