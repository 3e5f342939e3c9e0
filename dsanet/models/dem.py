"""Dual enhancement mechanism (DEM), eqs. (1)-(9), batched over samples.

An activation map (C, H, W) is read as the matrix F (C, N) with N = H*W. Per sample:

* peak mask P_max, eq. (1): 1 where F equals its maximum (every maximum when tied);
* salient mask P_s, eq. (2): 1 where F is above its mean;
* block mask M_g, eq. (3): one block of an r x c grid laid over the C x N matrix, drawn at random;
* P_sg = P_s * M_g, eq. (4), with the peak position removed from it, eq. (5);
* final mask M = P_sg + P_max, eq. (6) (selection "both"), or P_sg ("patch"), or P_max ("peak");
* salient stream F + alpha * M * F, eqs. (7)-(8); subtle stream F - beta * M * F, eq. (9).

Every function works on the whole batch at once on the maps' device: no loop over samples and no
host round trip. ``dem_reference.py`` is the plain per-sample loop the tests compare against.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

STRUCTURES = ("gan", "sas")
ENHANCEMENTS = ("none", "salient", "subtle", "dual")
SELECTIONS = ("peak", "patch", "both")
DRAWS = ("uniform", "published")
SLICES = ("exact", "published")


def _peak_bool(F: Tensor) -> Tensor:
    return F == F.flatten(1).amax(dim=1).view(-1, 1, 1)  # (B, C, N) bool


def _salient_bool(F: Tensor) -> Tensor:
    return F > F.flatten(1).mean(dim=1).view(-1, 1, 1)  # (B, C, N) bool


def peak_mask(F: Tensor) -> Tensor:
    """Eq. (1): 1 where F(i, j) equals the sample's maximum, else 0. F (B, C, N) -> (B, C, N)."""
    return _peak_bool(F).to(F.dtype)


def salient_mask(F: Tensor) -> Tensor:
    """Eq. (2): 1 where F(i, j) is above the sample's mean, else 0. F (B, C, N) -> (B, C, N)."""
    return _salient_bool(F).to(F.dtype)


def _check_grid(r: int, c: int, C: int | None = None, N: int | None = None) -> None:
    if r < 1 or c < 1:
        raise ValueError(f"DEM grid r x c must be positive, got r={r}, c={c}")
    if C is not None and r > C:
        raise ValueError(f"DEM grid: r={r} grid rows exceed the {C} channels of the map")
    if N is not None and c > N:
        raise ValueError(f"DEM grid: c={c} grid columns exceed the {N} positions H*W")


def draw_blocks(B: int, r: int, c: int, *, generator: torch.Generator | None = None,
                device=None, draw: str = "uniform") -> tuple[Tensor, Tensor]:
    """One block (l, m) of the r x c grid per sample for eq. (3): ``(rows, cols)`` long (B,).

    ``"uniform"``: each of the r*c blocks with probability 1/(r*c) (the paper: "randomly selecting
    l and m"). ``"published"``: the published script's draw. It takes j = int(r*c*U), U ~ U[0, 1),
    and uses 1-based block ``1 if j < 2 else j - 1``; with 0-based index this is ``max(j - 2, 0)``,
    so index 0 (block 1) has probability 3/(r*c) (j in {0, 1, 2}), indices 1 .. r*c-3 have 1/(r*c)
    each and the last two blocks are never chosen. Blocks are numbered row-major
    (index = l * c + m).
    """
    if draw not in DRAWS:
        raise ValueError(f"draw_blocks: block_draw must be one of {DRAWS}, got {draw!r}")
    _check_grid(r, c)
    n = r * c
    if draw == "published" and n < 3:
        raise ValueError(f"draw_blocks: the published draw needs r*c >= 3, got {r}x{c}")
    gen_device = generator.device if generator is not None else device
    j = torch.randint(n, (B,), generator=generator, device=gen_device)  # (B,) in [0, r*c)
    if draw == "published":
        j = (j - 2).clamp_(min=0)
    if device is not None:
        j = j.to(device, non_blocking=True)
    return torch.div(j, c, rounding_mode="floor"), j % c


def _span_mask(index: Tensor, parts: int, size: int, slices: str = "exact") -> Tensor:
    """(B,) part indices -> (B, size) bool.

    ``"exact"``: True on [floor(l*size/parts), floor((l+1)*size/parts)). ``"published"``: the
    published script's slices, [l*w, (l+1)*w) with w = floor(size/parts), except that the last
    part ends at ``parts + 1`` instead of ``size``, which leaves it empty whenever
    (parts-1)*w >= parts + 1 (e.g. 32 channels or 144 positions in 4 parts).
    """
    if slices == "published":
        w = size // parts
        start = (index * w)[:, None]                                        # (B, 1)
        end = torch.where(index == parts - 1, torch.full_like(index, parts + 1), (index + 1) * w)
        end = end.clamp(max=size)[:, None]
    else:
        start = torch.div(index * size, parts, rounding_mode="floor")[:, None]  # (B, 1)
        end = torch.div((index + 1) * size, parts, rounding_mode="floor")[:, None]
    pos = torch.arange(size, device=index.device)[None, :]  # (1, size)
    return (pos >= start) & (pos < end)


def block_mask(B: int, C: int, N: int, rows: Tensor, cols: Tensor, r: int, c: int,
               device=None, slices: str = "exact") -> Tensor:
    """Eq. (3): M_g (B, C, N) float, 1 on block (rows[b], cols[b]) of an r x c grid over C x N.

    Block (l, m) spans rows [floor(l*C/r), floor((l+1)*C/r)) and columns
    [floor(m*N/c), floor((m+1)*N/c)), so r and c need not divide C and N. ``slices="published"``
    takes the published script's slices instead (:func:`_span_mask`): for 32 x 144 in 4 x 4, the
    blocks of the last row and column (1-based 4, 8, 12, 13-16) are empty.
    """
    _check_grid(r, c, C, N)
    rows, cols = rows.to(device), cols.to(device)
    if rows.shape != (B,) or cols.shape != (B,):
        raise ValueError(f"block_mask: rows/cols must have shape ({B},), "
                         f"got {tuple(rows.shape)} and {tuple(cols.shape)}")
    return (_span_mask(rows, r, C, slices)[:, :, None]
            & _span_mask(cols, c, N, slices)[:, None, :]).float()


def _block_spans(F: Tensor, rows: Tensor, cols: Tensor, r: int, c: int,
                 slices: str = "exact") -> tuple[Tensor, Tensor]:
    """Eq. (3) as two bool factors (B, C, 1) and (B, 1, N) whose product is M_g for F (B, C, N)."""
    B, C, N = F.shape
    _check_grid(r, c, C, N)
    rows, cols = rows.to(F.device), cols.to(F.device)
    return _span_mask(rows, r, C, slices)[:, :, None], _span_mask(cols, c, N, slices)[:, None, :]


def dem_mask(F: Tensor, rows: Tensor, cols: Tensor, r: int, c: int, selection: str = "both",
             slices: str = "exact") -> Tensor:
    """Final DEM mask M (B, C, N), eqs. (4)-(6), in F's dtype with values 0/1.

    ``"both"`` (paper): M = P_sg + P_max where P_sg = P_s * M_g (4) with the peak position set to 0
    (5), so M stays 0/1: (5) then (6) is exactly the logical OR of P_s * M_g and P_max, which is
    how it is computed. ``"patch"`` (published script, Table XI row f): M = P_s * M_g; eq. (5) is
    not applied since no peak term is added. ``"peak"`` (Table XI row e): M = P_max.
    ``slices`` ("exact" | "published") picks the block's extent, see :func:`block_mask`.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"dem_mask: selection must be one of {SELECTIONS}, got {selection!r}")
    if selection == "peak":
        return peak_mask(F)                      # eq. (1)
    in_rows, in_cols = _block_spans(F, rows, cols, r, c, slices)  # eq. (3)
    patch = _salient_bool(F)                     # eq. (2)
    patch &= in_rows                             # eq. (4): P_s * M_g, in place
    patch &= in_cols
    if selection == "both":
        patch |= _peak_bool(F)                   # eqs. (1), (5), (6)
    return patch.to(F.dtype)


def enhance(F: Tensor, M: Tensor, alpha: float) -> Tensor:
    """Eqs. (7)-(8): salient stream f_sal = F + alpha * (M * F)."""
    return torch.addcmul(F, M, F, value=alpha)


def suppress(F: Tensor, M: Tensor, beta: float) -> Tensor:
    """Eq. (9): subtle stream f_sub = F - beta * (M * F)."""
    return torch.addcmul(F, M, F, value=-beta)


def _validate(cfg) -> None:
    for name, allowed in (("structure", STRUCTURES), ("enhancement", ENHANCEMENTS),
                          ("selection", SELECTIONS), ("block_draw", DRAWS),
                          ("block_slices", SLICES)):
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"DEM: cfg.{name} must be one of {allowed}, "
                             f"got {getattr(cfg, name)!r}")
    if cfg.dem_layers < 1:
        raise ValueError(f"DEM: cfg.dem_layers must be >= 1, got {cfg.dem_layers}")
    _check_grid(cfg.r, cfg.c)


class DEM(nn.Module):
    """The dual enhancement mechanism as a module: maps (B, C, H, W) -> list of cfg.n_streams maps.

    Streams by ``cfg.structure`` and ``cfg.enhancement`` (Tables V, VI, VII):

    * ``gan`` (one adversarial stream): none -> [F]; salient -> [f_sal]; subtle -> [f_sub];
      dual -> [(f_sal + f_sub) / 2] = [F + (alpha - beta)/2 * M * F], Table VII "Concatenate"
      (merging without adding parameters; see the fidelity notes).
    * ``sas`` (siamese, one shared generator): none -> [F, F] (the two streams differ only by
      their dropout, Table V row c); salient -> [f_sal, f_sal'] and subtle -> [f_sub, f_sub'] with
      two independent block draws; dual -> [f_sal, f_sub] sharing ONE block draw (DSANet).
      With ``dem_layers`` L > 1 (dual only) every stream of layer l is fed to DEM again with new
      draws and gives a (salient, subtle) pair: 2, 6, 14 streams for L = 1, 2, 3, all returned
      layer by layer, children in parent order (Fig. 6, Table VI).

    Draw order (fixed, so a seeded ``torch.Generator`` replays it): one ``draw_blocks`` call per
    DEM layer on the parents stacked along the batch (P*B samples); for sas salient/subtle one call
    on [F; F] (2B samples). In ``eval()`` mode the module returns ``[maps]`` (training only).
    """

    def __init__(self, cfg):
        super().__init__()
        _validate(cfg)
        self.structure, self.enhancement = cfg.structure, cfg.enhancement
        self.selection, self.draw = cfg.selection, cfg.block_draw
        self.slices = getattr(cfg, "block_slices", "exact")
        self.alpha, self.beta = float(cfg.alpha), float(cfg.beta)
        self.r, self.c, self.layers = int(cfg.r), int(cfg.c), int(cfg.dem_layers)
        self.n_streams = cfg.n_streams
        self.stream_kinds = self._kinds()

    def _kinds(self) -> list[int]:
        """Centre kind of each training stream: 0 salient side, 1 subtle side (eq. 27)."""
        if self.structure == "gan":
            return [0]
        return [s % 2 for s in range(self.n_streams)]

    def extra_repr(self) -> str:
        return (f"structure={self.structure}, enhancement={self.enhancement}, selection={self.selection}, "
                f"draw={self.draw}, slices={self.slices}, r={self.r}, c={self.c}, layers={self.layers}, "
                f"alpha={self.alpha}, beta={self.beta}")

    def mask(self, maps: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """New block draws and the eq. (6) mask for maps (B, C, H, W) -> (B, C, H, W)."""
        F = maps.flatten(2)  # (B, C, N)
        rows, cols = draw_blocks(F.shape[0], self.r, self.c, generator=generator,
                                 device=maps.device, draw=self.draw)
        return dem_mask(F, rows, cols, self.r, self.c, self.selection, self.slices).view_as(maps)

    def forward(self, maps: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        if maps.dim() != 4:
            raise ValueError(f"DEM expects maps (B, C, H, W), got {tuple(maps.shape)}")
        if not self.training:
            return [maps]
        if self.enhancement == "none":
            return [maps] * self.n_streams
        if self.structure == "gan":
            return [self._single(maps, self.mask(maps, generator))]
        if self.enhancement == "dual":
            return self._cascade(maps, generator)
        pair = torch.cat([maps, maps])  # (2B, C, H, W): two independent draws
        return list(self._single(pair, self.mask(pair, generator)).chunk(2))

    def _single(self, maps: Tensor, M: Tensor) -> Tensor:
        if self.enhancement == "salient":
            return enhance(maps, M, self.alpha)
        if self.enhancement == "subtle":
            return suppress(maps, M, self.beta)
        return enhance(maps, M, (self.alpha - self.beta) / 2)  # gan + dual: mean of (8) and (9)

    def _cascade(self, maps: Tensor, generator: torch.Generator | None) -> list[Tensor]:
        out: list[Tensor] = []
        parents = [maps]
        for _ in range(self.layers):
            x = torch.cat(parents) if len(parents) > 1 else maps  # (P*B, C, H, W)
            M = self.mask(x, generator)
            sal = enhance(x, M, self.alpha).chunk(len(parents))
            sub = suppress(x, M, self.beta).chunk(len(parents))
            parents = [s for pair in zip(sal, sub) for s in pair]  # (sal, sub) per parent
            out += parents
        return out
