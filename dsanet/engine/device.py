"""Where a run computes, and the small device-side conveniences around it.

* ``resolve_device(cfg)``: ``"auto"`` -> ``cuda`` when available, else ``cpu`` - except in the
  paper profile, which stops with a :class:`DeviceError` naming the torch build and what CUDA it
  found rather than train for days on the CPU without a word (``--device cpu`` insists). A CUDA
  device also gets the fast settings (:func:`configure_cuda`): ``cudnn.benchmark`` and TF32
  matmuls and convolutions, unless determinism is asked for (``torch.use_deterministic_algorithms``
  or ``$DSANET_DETERMINISTIC=1``).
* ``autocast(device, amp)``: ``cfg.amp`` = "bf16" (default; no loss scaling needed), "fp16"
  (pre-Ampere GPUs; the steps scale their losses with :func:`grad_scaler`) or "off"; True and
  False are the old spellings of "bf16" and "off". CUDA only: a no-op context on CPU, where
  reduced-precision autocast would be slower than float32 on most hosts.
* ``to_device(x, device)``: non-blocking copies; from the host through pinned buffers allocated
  once (:mod:`dsanet.data.transfer`), not a fresh pinned copy per tensor per step.
* ``place_cached(cached, device)``: move a whole decoded cache onto the GPU once when it fits, so
  that batches are gathered on the device by indexing alone. The rule (:func:`placement`): the
  split must fit in ``max_fraction`` of the GPU's free memory, and together with what the other
  live processes of this machine have placed on the same GPU (claims in a locked file per GPU,
  :func:`claim_gpu_memory`) in ``max_fraction`` of its total memory - so two sweep workers sharing
  a GPU never both copy a 35 GB cache onto it: the first places it, the second gathers on the host
  and sends compact batches (uint8 faces, float16 spectrograms).

No DataLoader workers are needed: the decoded inputs of a split sit in memory (or on the GPU) as
two big tensors and a batch is one vectorised index + crop/flip, far cheaper than a training step
(see ``benchmarks/input_pipeline.py``: ~30x the step's throughput on CPU). ``cfg.num_workers`` is
used where files are decoded: the cache build and the raw-file path of that benchmark.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from ..config import Config
from ..config_rules import amp_mode
from ..data.transfer import STAGING

log = logging.getLogger(__name__)

# profiles whose device="auto" refuses to fall back to the CPU (a paper-size run takes days there)
GPU_PROFILES = ("paper",)
DETERMINISTIC_ENV = "DSANET_DETERMINISTIC"


class DeviceError(RuntimeError):
    """The device asked for cannot be used here (no usable GPU); the message says what to do."""


def resolve_device(cfg: Config | str, fallback: bool | None = None) -> torch.device:
    """``cfg.device`` as a ``torch.device``; "auto" picks CUDA when there is a usable GPU.

    Without one, "auto" falls back to the CPU, except in the paper profile (``GPU_PROFILES``),
    where it raises :class:`DeviceError` naming the torch build and what CUDA it found;
    ``fallback=True`` falls back there too, with a warning (evaluating a checkpoint, say),
    ``fallback=False`` refuses in every profile. A CUDA device is configured by
    :func:`configure_cuda`.
    """
    name = cfg if isinstance(cfg, str) else cfg.device
    profile = None if isinstance(cfg, str) else cfg.profile
    if name == "auto":
        if torch.cuda.is_available():
            return configure_cuda(torch.device("cuda"))
        if fallback is False or (fallback is None and profile in GPU_PROFILES):
            raise DeviceError(no_gpu_message(profile))
        if profile in GPU_PROFILES:
            log.warning("no usable GPU (%s); the %s profile runs on the CPU", cuda_found(), profile)
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for, but CUDA is not available on this "
                              f"machine: {build_and_found()}; pass --device cpu to run on the CPU")
        configure_cuda(device)
    return device


def build_and_found() -> str:
    """The torch build and what CUDA it finds, in words."""
    built = (f"CUDA {torch.version.cuda} build" if torch.version.cuda
             else "CPU-only build (no CUDA support)")
    return f"torch {torch.__version__} is a {built}; {cuda_found()}"


def cuda_found() -> str:
    """What this process finds of CUDA: usable GPUs, the NVIDIA driver, CUDA_VISIBLE_DEVICES."""
    parts = []
    try:
        n = torch.cuda.device_count()
    except Exception as e:  # noqa: BLE001 - a broken driver: say so
        n, parts = 0, [f"CUDA fails to start ({type(e).__name__}: {e})"]
    parts.insert(0, f"{n} usable GPU(s)")
    parts.append(_driver())
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        parts.append(f"CUDA_VISIBLE_DEVICES={visible!r}")
    return ", ".join(parts)


def _driver() -> str:
    """The NVIDIA driver (nvidia-smi), or that there is none on PATH."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "no NVIDIA driver found (nvidia-smi not on PATH)"
    try:
        out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"nvidia-smi failed ({type(e).__name__})"
    lines = [x.strip() for x in out.stdout.splitlines() if x.strip()]
    if out.returncode or not lines:
        return f"nvidia-smi sees no GPU ({(out.stderr or out.stdout).strip()[:200] or 'no output'})"
    return "nvidia-smi: " + "; ".join(lines) + " (GPU name, driver)"


def no_gpu_message(profile: str | None) -> str:
    where = f" in the {profile} profile" if profile else ""
    return (f"device 'auto'{where} needs a usable GPU and found none: "
            f"{build_and_found()}. Install the torch wheel built for your NVIDIA driver (see the "
            "README), or pass --device cpu (reproduce: --param device=cpu) to run on the CPU "
            "anyway (a paper-size run takes days there)")


def deterministic_requested() -> bool:
    """Whether determinism is asked for: ``torch.use_deterministic_algorithms(True)`` or
    ``$DSANET_DETERMINISTIC`` set to 1 / true / yes."""
    env = os.environ.get(DETERMINISTIC_ENV, "").strip().lower() in ("1", "true", "yes")
    return env or torch.are_deterministic_algorithms_enabled()


def configure_cuda(device: torch.device | None = None,
                   deterministic: bool | None = None) -> torch.device | None:
    """Fast CUDA settings, or reproducible ones when determinism is asked for
    (``deterministic`` None: :func:`deterministic_requested`).

    Fast: ``cudnn.benchmark`` (the fastest convolution algorithms for the fixed input sizes of a
    run) and TF32 for float32 matmuls and convolutions (Ampere and later). Deterministic: neither,
    and ``cudnn.deterministic``. Returns ``device``.
    """
    det = deterministic_requested() if deterministic is None else deterministic
    torch.backends.cudnn.benchmark = not det
    torch.backends.cudnn.deterministic = det
    torch.backends.cuda.matmul.allow_tf32 = not det
    torch.backends.cudnn.allow_tf32 = not det
    return device


def amp_dtype(device: torch.device, amp="bf16") -> torch.dtype | None:
    """The autocast dtype of ``amp`` ("bf16", "fp16", "off"; True / False) on ``device``;
    None on the CPU and for "off"."""
    mode = amp_mode(amp)
    if device.type != "cuda" or mode == "off":
        return None
    return torch.float16 if mode == "fp16" else torch.bfloat16


def autocast(device: torch.device, amp="bf16"):
    """Autocast to ``amp``'s dtype on CUDA (:func:`amp_dtype`); a null context otherwise."""
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def grad_scaler(device: torch.device, amp="bf16") -> torch.amp.GradScaler | None:
    """A loss scaler for "fp16" on CUDA (fp16 gradients underflow without one); None otherwise
    (bf16 has float32's range)."""
    if amp_dtype(device, amp) is not torch.float16:
        return None
    return torch.amp.GradScaler("cuda")


def to_device(x, device: torch.device):
    """Tensors (or tuples/lists/dicts of them) onto ``device`` without blocking the host."""
    if isinstance(x, torch.Tensor):
        if x.device == device:
            return x
        if device.type == "cuda":
            return STAGING.to(x, device)
        return x.to(device, non_blocking=True)
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def _tensor_fields(obj) -> dict[str, torch.Tensor]:
    if dataclasses.is_dataclass(obj):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        items = dict(vars(obj))
    return {k: v for k, v in items.items() if isinstance(v, torch.Tensor)}


def placement(size: int, free: int, total: int, others: int, max_fraction: float = 0.5) -> bool:
    """Whether a split of ``size`` bytes goes onto a GPU with ``free`` of ``total`` bytes free,
    of which other live processes of this machine have claimed ``others`` for their caches:
    ``size`` must fit in ``max_fraction`` of the free memory and, with ``others``, in
    ``max_fraction`` of the total (the claims count even before their copies have landed)."""
    return size < max_fraction * free and size + others <= max_fraction * total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claims_dir() -> Path:
    """Where the per-GPU claim files live: this machine's temporary folder (a GPU is local to
    its machine); ``$DSANET_GPU_CLAIMS`` overrides it."""
    return Path(os.environ.get("DSANET_GPU_CLAIMS") or Path(tempfile.gettempdir()) / "dsanet-gpu-claims")


def claim_gpu_memory(gpu: str, size: int, free: int, total: int, max_fraction: float = 0.5,
                     folder: Path | None = None, pid: int | None = None) -> bool:
    """Decide :func:`placement` for ``size`` bytes on GPU ``gpu`` (its UUID) and, when it goes,
    record the claim for this process (``pid``), all under an exclusive lock of the GPU's claim
    file, so that concurrent workers decide one after the other. Claims of dead processes are
    dropped. True when the split may be placed."""
    import fcntl

    folder = Path(folder or claims_dir())
    folder.mkdir(parents=True, exist_ok=True)
    pid = os.getpid() if pid is None else pid
    path = folder / f"{gpu}.json"
    with open(folder / f"{gpu}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        claims = json.loads(path.read_text()) if path.exists() else {}
        claims = {p: n for p, n in claims.items() if _alive(int(p))}
        others = sum(n for p, n in claims.items() if int(p) != pid)
        ok = placement(size, free, total, others, max_fraction)
        if ok:
            claims[str(pid)] = claims.get(str(pid), 0) + size
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(claims))
        tmp.replace(path)
    return ok


def _gpu_id(device: torch.device) -> str:
    props = torch.cuda.get_device_properties(device)
    return str(getattr(props, "uuid", None) or f"{props.name}-{device.index or 0}").replace("/", "-")


def place_cached(cached, device: torch.device, max_fraction: float = 0.5):
    """Move every tensor of a cached split to ``device`` once, when :func:`claim_gpu_memory`
    says it fits (this process's claim recorded); otherwise they stay memory-mapped on the host
    and each gathered batch crosses in compact dtypes through pinned buffers. On CPU the split is
    returned unchanged."""
    if device.type != "cuda":
        return cached
    tensors = _tensor_fields(cached)
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    free, total = torch.cuda.mem_get_info(device)
    if not claim_gpu_memory(_gpu_id(device), size, free, total, max_fraction):
        log.info("cache of %.1f GB stays on the host (GPU %s: %.1f of %.1f GB free, or claimed by "
                 "other workers)", size / 1e9, device, free / 1e9, total / 1e9)
        return cached
    moved = {k: t.to(device) for k, t in tensors.items()}
    if dataclasses.is_dataclass(cached):
        return dataclasses.replace(cached, **moved)
    for k, v in moved.items():
        setattr(cached, k, v)
    return cached
