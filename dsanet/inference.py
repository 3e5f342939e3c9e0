"""Use a trained model: embed voices and faces, rank candidates, export a tree's embeddings.

``dsanet.load(checkpoint)`` returns a :class:`Matcher`. Its front-ends are those of evaluation
(:mod:`dsanet.data.frontends`, as the cache and :func:`dsanet.engine.evaluate.embed_split` use
them): a voice becomes the spectrogram of ``cfg`` centre-cropped (or repeated) to
``cfg.spec_frames`` frames and rounded to float16 as the cache stores it; a face is resized to
``cfg.face_size`` (antialiased), kept as uint8 and normalised with mean 0.5 / std 0.5. The
network runs on its evaluation path (backbone -> shared generator, no DEM, BatchNorm on running
statistics), so an item embedded here equals the one evaluation scored.

Example::

    import dsanet
    model = dsanet.load("models/dsanet-quick.pt")
    model.match(voice="a.wav", faces=["f1.jpg", "f2.jpg"])      # ranked DataFrame with scores

Scores follow :func:`dsanet.engine.evaluate.similarity`: ``"distance"`` (negative Euclidean
distance, what the structured metric of eqs. 21-22 trains) or ``"cosine"``; higher = more alike.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .config import Config
from .config_rules import UsageError
from .data.frontends import Spectrogram, load_face, load_wav, normalise_faces, resize_face
from .data.layout import DataError
from .engine import checkpoint as ckpt
from .engine import evaluate as ev
from .engine.checkpoint import build_network  # noqa: F401 - the one loader, re-exported
from .engine.device import autocast


def load(checkpoint, device: str | None = None, **overrides) -> "Matcher":
    """A :class:`Matcher` for a checkpoint written by ``train`` (``weights_only`` loading).

    ``device`` ("cpu", "cuda", "auto"; default: the checkpoint's ``cfg.device``) and
    ``overrides`` (Config fields such as ``data_root``) change the saved config.
    """
    net, cfg, state = ckpt.load_network(checkpoint, device, **overrides)
    return Matcher(net, cfg, int(state.get("step", 0)), Path(checkpoint))


class Matcher:
    """A trained DSANet in evaluation mode with the evaluation front-ends.

    ``embed_voice`` / ``embed_face`` take one input or a list and return (D,) or (n, D) float32
    CPU tensors; ``match`` ranks candidates of the other modality for one anchor.
    """

    def __init__(self, net, cfg: Config, step: int = 0, path: Path | None = None):
        self.net, self.cfg, self.step, self.path = net, cfg, step, path
        self.device = next(net.parameters()).device
        self.spectrogram = Spectrogram(cfg)

    def __repr__(self) -> str:
        return (f"Matcher({self.path or 'in memory'}, step {self.step}, profile "
                f"{self.cfg.profile!r}, embed_dim {self.cfg.embed_dim})")

    # ------------------------------------------------------------------ front-ends
    def voice_input(self, voice) -> Tensor:
        """A path, a waveform (T,) at ``cfg.sample_rate`` or a ``(waveform, rate)`` pair ->
        the evaluation crop (1, spec_bins, spec_frames)."""
        rate = self.cfg.sample_rate
        if isinstance(voice, tuple) and len(voice) == 2 and isinstance(voice[1], int):
            voice, rate = voice
        if isinstance(voice, (str, Path)):
            wave = load_wav(voice, self.cfg.sample_rate)                  # (T,)
        else:
            wave = torch.as_tensor(np.array(voice, dtype=np.float32))
            if wave.ndim == 2:                                             # (T, channels)
                wave = wave.mean(dim=1)
            if wave.ndim != 1 or wave.numel() == 0 or not torch.isfinite(wave).all():
                raise DataError(f"waveform of shape {tuple(wave.shape)}: expected a finite, "
                                "non-empty mono (T,) signal", "invalid")
            if rate != self.cfg.sample_rate:
                import torchaudio

                wave = torchaudio.functional.resample(wave, rate, self.cfg.sample_rate)
        with torch.no_grad():
            spec = self.spectrogram(wave)                                  # (1, F, T)
        spec = spec.half().float()                                         # the cache's float16
        return self.spectrogram.crop(spec, self.cfg.spec_frames, train=False)

    def face_input(self, face) -> Tensor:
        """A path or an RGB image ((H, W, 3) array / PIL image, (3, H, W) tensor) -> (3, S, S)."""
        if isinstance(face, (str, Path)):
            img = load_face(face)                                          # (3, H, W) uint8
        else:
            if hasattr(face, "convert"):                                   # PIL image
                face = np.asarray(face.convert("RGB"))
            img = torch.as_tensor(np.array(face))                         # a writable copy
            if img.ndim == 3 and img.shape[-1] == 3 and img.shape[0] != 3:
                img = img.permute(2, 0, 1)                                 # (H, W, 3) -> (3, H, W)
            if img.ndim != 3 or img.shape[0] != 3 or min(img.shape[1:]) == 0:
                raise DataError(f"image of shape {tuple(img.shape)}: expected RGB (H, W, 3) "
                                "or (3, H, W)", "invalid")
            if img.dtype != torch.uint8:                                   # floats in [0, 1]
                img = (img.float().clamp(0, 1) * 255).round().to(torch.uint8)
        return normalise_faces(resize_face(img.contiguous(), self.cfg.face_size))

    # ------------------------------------------------------------------ embeddings
    def _embed(self, x: Tensor, modality: str) -> Tensor:
        with torch.inference_mode(), autocast(self.device, self.cfg.amp):   # cfg.amp on CUDA
            return self.net.embed(x.to(self.device), modality).float().cpu()   # (n, D)

    def embed_voice(self, voice) -> Tensor:
        """One voice (a path, a waveform, a (waveform, rate) pair) -> (D,); a list -> (n, D)."""
        many = isinstance(voice, list) or (isinstance(voice, tuple) and not (
            len(voice) == 2 and isinstance(voice[1], int)))
        x = torch.stack([self.voice_input(v) for v in (voice if many else [voice])])
        h = self._embed(x, "voice")
        return h if many else h[0]

    def embed_face(self, face) -> Tensor:
        """One face -> (D,); a list of faces -> (n, D)."""
        many = isinstance(face, (list, tuple))
        x = torch.stack([self.face_input(f) for f in (face if many else [face])])
        h = self._embed(x, "face")
        return h if many else h[0]

    # ------------------------------------------------------------------ ranking
    def match(self, voice=None, faces=None, face=None, voices=None,
              score: str = "distance") -> pd.DataFrame:
        """Rank candidates for one anchor: ``voice`` + ``faces`` (V-F) or ``face`` + ``voices``.

        Returns one row per candidate, best first: rank (1 = best), candidate (its path or
        position), score (higher = more alike), index (position in the given list).
        """
        if (voice is None) == (face is None) or (voice is not None and not faces) \
                or (face is not None and not voices):
            raise ValueError("match: give voice= with faces=[...] or face= with voices=[...]")
        if voice is not None:
            anchor, cands = self.embed_voice(voice), self.embed_face(list(faces))
            names = list(faces)
        else:
            anchor, cands = self.embed_face(face), self.embed_voice(list(voices))
            names = list(voices)
        scores = ev.similarity(anchor[None], cands, score).numpy()          # (k,)
        return ranking(scores, names)

    def rank_faces(self, voice, faces, score: str = "distance") -> pd.DataFrame:
        return self.match(voice=voice, faces=faces, score=score)

    def rank_voices(self, face, voices, score: str = "distance") -> pd.DataFrame:
        return self.match(face=face, voices=voices, score=score)


def ranking(scores: np.ndarray, names) -> pd.DataFrame:
    """Candidates sorted by decreasing score (stable: ties keep the given order)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    label = [str(n) if isinstance(n, (str, Path)) else f"#{i}" for i, n in enumerate(names)]
    return pd.DataFrame({"rank": np.arange(1, len(order) + 1),
                         "candidate": [label[i] for i in order],
                         "score": np.asarray(scores, dtype=float)[order],
                         "index": order})


# ----------------------------------------------------------------------------- a whole tree

def embed_tree(model: Matcher, data_root=None, splits=("train", "val", "test"),
               progress: bool = False) -> pd.DataFrame:
    """Every item of a data tree embedded on the evaluation path (through the decoded cache).

    One row per item: split, modality, identity (the VoxCeleb1 id), face_id, path (relative to
    the voice / face root), then e0 .. e{D-1}. Bad files are skipped by the cache (counted in
    its report, named in a warning) as in evaluation.
    """
    from tqdm.auto import tqdm

    from .data.cache import build_cache
    from .data.splits import load_cfg_index

    cfg = model.cfg if data_root is None else model.cfg.replace(data_root=str(data_root))
    index = load_cfg_index(cfg)
    frames = []
    for split in tqdm(splits, desc="embed", disable=None if progress else True):
        if not (index.identities.split == split).any():
            continue
        cached = build_cache(index, cfg, split)
        emb = ev.embed_split(model.net, cached, cfg)
        for modality, x, table in (("voice", emb.voice, cached.voice_table),
                                   ("face", emb.face, cached.face_table)):
            ids = index.identities.iloc[table.identity.to_numpy()]
            head = pd.DataFrame({"split": split, "modality": modality,
                                 "identity": ids.voice_id.to_numpy(),
                                 "face_id": ids.face_id.to_numpy(), "path": table.path.to_numpy()})
            vals = pd.DataFrame(x.numpy(), columns=[f"e{j}" for j in range(x.shape[1])])
            frames.append(pd.concat([head, vals], axis=1))
    if not frames:
        raise DataError(f"{cfg.data_root}: no identity in splits {list(splits)}", "empty")
    return pd.concat(frames, ignore_index=True)


def write_embeddings(table: pd.DataFrame, out) -> Path:
    """``.csv`` (pandas.read_csv / numpy.genfromtxt) or ``.npz`` (numpy.load: embeddings (N, D),
    split, modality, identity, face_id, path)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        cols = [c for c in table.columns if c.startswith("e") and c[1:].isdigit()]
        np.savez(out, embeddings=table[cols].to_numpy(np.float32),
                 **{c: table[c].to_numpy(str) for c in ("split", "modality", "identity",
                                                        "face_id", "path")})
    elif out.suffix == ".csv":
        table.to_csv(out, index=False, float_format="%.7g")
    else:
        raise ValueError(f"{out}: use a .csv or .npz file name")
    return out


# ----------------------------------------------------------------------------- command line

def add_match_arguments(p) -> None:
    p.add_argument("--checkpoint", metavar="PATH", required=True,
                   help="a checkpoint written by train (e.g. models/dsanet-quick.pt)")
    p.add_argument("--voice", metavar="WAV", default=None, help="the anchor voice (V-F)")
    p.add_argument("--faces", metavar="IMG", nargs="+", default=None,
                   help="candidate faces for --voice")
    p.add_argument("--face", metavar="IMG", default=None, help="the anchor face (F-V)")
    p.add_argument("--voices", metavar="WAV", nargs="+", default=None,
                   help="candidate voices for --face")
    p.add_argument("--score", choices=ev.SCORES, default="distance",
                   help="distance: negative Euclidean distance (what training optimises); "
                        "cosine: cosine similarity")
    p.add_argument("--device", default="cpu", help="cpu, auto, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON records")


def run_match(args) -> int:
    if (args.voice is None) == (args.face is None):
        raise UsageError("give --voice WAV --faces IMG ... or --face IMG --voices WAV ...")
    if args.voice is not None and not args.faces:
        raise UsageError("--voice needs --faces IMG [IMG ...]")
    if args.face is not None and not args.voices:
        raise UsageError("--face needs --voices WAV [WAV ...]")
    if (args.voice is not None and args.voices) or (args.face is not None and args.faces):
        raise UsageError("--voice goes with --faces, --face with --voices")
    model = load(args.checkpoint, device=args.device)
    table = model.match(voice=args.voice, faces=args.faces, face=args.face, voices=args.voices,
                        score=args.score)
    if args.json:
        print(table.to_json(orient="records", indent=1))
    else:
        anchor = args.voice if args.voice is not None else args.face
        print(f"anchor: {anchor} ({'V-F' if args.voice is not None else 'F-V'}, {args.score})")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def add_embed_arguments(p) -> None:
    p.add_argument("--checkpoint", metavar="PATH", required=True,
                   help="a checkpoint written by train")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="data root with voices/, faces/ and a meta CSV (default: the "
                        "checkpoint's data_root)")
    p.add_argument("--out", metavar="FILE", required=True,
                   help="embeddings file: .csv (one row per item: split, modality, identity, "
                        "face_id, path, e0..) or .npz (arrays of the same)")
    p.add_argument("--splits", nargs="+", choices=("train", "val", "test"),
                   default=["train", "val", "test"], help="splits to export (default: all)")
    p.add_argument("--device", default="cpu", help="cpu, auto, cuda or cuda:N")


def run_embed(args) -> int:
    out = Path(args.out)
    if out.suffix not in (".csv", ".npz"):
        raise UsageError(f"--out {out}: use a .csv or .npz file name")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name")
    model = load(args.checkpoint, device=args.device)
    table = embed_tree(model, args.data, tuple(args.splits),
                       progress=not getattr(args, "quiet", False) and model.cfg.profile != "smoke")
    write_embeddings(table, out)
    counts = table.groupby(["split", "modality"]).size().to_dict()
    print(f"wrote {len(table)} embeddings of dimension {model.cfg.embed_dim} to {out}: {counts}")
    return 0


__all__ = ["Matcher", "add_embed_arguments", "add_match_arguments", "build_network",
           "embed_tree", "load", "ranking", "run_embed", "run_match", "write_embeddings"]
