"""Training and evaluation.

* :mod:`~dsanet.engine.train` - ``train(cfg, out_dir)``: the run loop, model selection on
  validation, resume, the NaN guard, DDP;
* :mod:`~dsanet.engine.step` - one step: the alternating discriminator / generator updates
  (eqs. 12-13, 24, 25), gradient clipping, the variant's post-step hook;
* :mod:`~dsanet.engine.build` - seeding, splits, the task and the model of a run;
* :mod:`~dsanet.engine.matching`, :mod:`~dsanet.engine.retrieval` - batches, losses and
  validation scores of the two tasks;
* :mod:`~dsanet.engine.optim` - Adam groups and the "exp" / "step" schedules;
* :mod:`~dsanet.engine.checkpoint` - atomic checkpoints and random-stream states;
* :mod:`~dsanet.engine.distributed` - ``torchrun`` / DistributedDataParallel helpers;
* :mod:`~dsanet.engine.device` - device choice, autocast, pinned copies;
* :mod:`~dsanet.engine.evaluate` - metrics and their intervals;
* :mod:`~dsanet.engine.cli` - ``python -m dsanet train`` / ``evaluate``.

Submodules are imported on use (``from dsanet.engine.train import train``), so importing the
package stays cheap.
"""
