"""DEM, eqs. (1)-(9): hand-built known answers, the per-sample reference, stream structure."""
import pytest
import torch

from dsanet.config import paper, smoke
from dsanet.models.dem import (DEM, block_mask, dem_mask, draw_blocks, enhance, peak_mask,
                               salient_mask, suppress)
from dsanet.models.dem_reference import dem_reference

# A 4 x 6 matrix (C = 4, N = 6): sum 33, mean 1.375, single peak 9 at (1, 2).
HAND = torch.tensor([[[1., 2., 0., 0., 5., 1.],
                      [0., 3., 9., 0., 0., 0.],
                      [4., 0., 0., 2., 0., 0.],
                      [0., 0., 0., 0., 6., 0.]]])


def _positions(mask):
    """Set of (i, j) where a (1, C, N) mask is nonzero."""
    return {tuple(ij) for ij in mask[0].nonzero().tolist()}


def _long(*v):
    return torch.tensor(v, dtype=torch.long)


# ---------------------------------------------------------------- eqs. (1)-(3)

def test_peak_mask_eq1_single_and_tied_maxima():
    assert _positions(peak_mask(HAND)) == {(1, 2)}
    tied = torch.tensor([[[7., 1.], [7., 7.]]])
    assert _positions(peak_mask(tied)) == {(0, 0), (1, 0), (1, 1)}
    assert peak_mask(HAND).dtype == HAND.dtype


def test_salient_mask_eq2_strictly_above_mean():
    expected = {(0, 1), (0, 4), (1, 1), (1, 2), (2, 0), (2, 3), (3, 4)}  # values > 1.375
    assert _positions(salient_mask(HAND)) == expected
    flat = torch.full((1, 2, 3), 2.0)  # every value equals the mean: nothing is salient
    assert salient_mask(flat).sum() == 0


def test_block_mask_eq3_non_divisible_grid():
    # C = 5, N = 7, r = 2, c = 3: row spans [0,2) [2,5); column spans [0,2) [2,4) [4,7).
    M = block_mask(3, 5, 7, _long(0, 1, 1), _long(0, 1, 2), 2, 3)
    cells = lambda rows, cols: {(i, j) for i in rows for j in cols}
    assert _positions(M[0:1]) == cells(range(0, 2), range(0, 2))
    assert _positions(M[1:2]) == cells(range(2, 5), range(2, 4))
    assert _positions(M[2:3]) == cells(range(2, 5), range(4, 7))


@pytest.mark.parametrize("r,c,C,N", [(4, 4, 32, 144), (3, 5, 32, 144), (5, 2, 7, 9)])
def test_blocks_tile_the_matrix(r, c, C, N):
    rows = torch.arange(r).repeat_interleave(c)
    cols = torch.arange(c).repeat(r)
    M = block_mask(r * c, C, N, rows, cols, r, c)
    assert torch.equal(M.sum(0), torch.ones(C, N))  # every cell in exactly one block


def test_grid_larger_than_map_is_rejected():
    with pytest.raises(ValueError, match="exceed"):
        block_mask(1, 3, 10, _long(0), _long(0), 4, 2)


# ---------------------------------------------------------------- eqs. (4)-(6)

def test_dem_mask_peak_inside_block_eq5():
    rows, cols = _long(0), _long(1)  # rows 0-1, columns 2-3: contains only the peak (1, 2) as salient
    assert _positions(dem_mask(HAND, rows, cols, 2, 3, "patch")) == {(1, 2)}
    both = dem_mask(HAND, rows, cols, 2, 3, "both")
    assert _positions(both) == {(1, 2)}
    assert both.max() == 1  # eq. (5) keeps eq. (6) at 1 on the peak, not 2


def test_dem_mask_peak_outside_block_eq4_eq6():
    rows, cols = _long(1), _long(2)  # rows 2-3, columns 4-5: salient (3, 4)
    assert _positions(dem_mask(HAND, rows, cols, 2, 3, "patch")) == {(3, 4)}
    assert _positions(dem_mask(HAND, rows, cols, 2, 3, "both")) == {(3, 4), (1, 2)}
    assert _positions(dem_mask(HAND, rows, cols, 2, 3, "peak")) == {(1, 2)}
    rows, cols = _long(0), _long(0)  # rows 0-1, columns 0-1: (0,0)=1 is below the mean
    assert _positions(dem_mask(HAND, rows, cols, 2, 3, "patch")) == {(0, 1), (1, 1)}


def test_dem_mask_value_equal_to_mean_is_not_salient():
    F = torch.tensor([[[2., 0.], [1., 1.]]])  # mean 1: the two 1s are not above it
    assert _positions(dem_mask(F, _long(0), _long(0), 1, 1, "patch")) == {(0, 0)}
    assert _positions(dem_mask(F, _long(0), _long(0), 1, 1, "both")) == {(0, 0)}


def test_dem_mask_rejects_unknown_selection():
    with pytest.raises(ValueError, match="selection"):
        dem_mask(HAND, _long(0), _long(0), 2, 3, "both+")


# ---------------------------------------------------------------- eqs. (7)-(9)

def test_enhance_and_suppress_eq8_eq9_by_hand():
    F = torch.tensor([[[2., -1.], [3., 4.]]])
    M = torch.tensor([[[1., 0.], [1., 1.]]])
    assert torch.equal(enhance(F, M, 1.0), torch.tensor([[[4., -1.], [6., 8.]]]))
    assert torch.equal(enhance(F, M, 0.5), torch.tensor([[[3., -1.], [4.5, 6.]]]))
    torch.testing.assert_close(suppress(F, M, 0.9), torch.tensor([[[0.2, -1.], [0.3, 0.4]]]))


def test_enhanced_gradient_is_one_plus_alpha_mask():
    F = HAND.clone().requires_grad_(True)
    M = dem_mask(HAND, _long(1), _long(2), 2, 3, "both")
    enhance(F, M, 1.0).sum().backward()
    assert torch.equal(F.grad, 1 + M)


# ---------------------------------------------------------------- draws

def _frequencies(draw, r=4, c=4, n=160_000):
    g = torch.Generator().manual_seed(1)
    rows, cols = draw_blocks(n, r, c, generator=g, draw=draw)
    assert rows.dtype == torch.long and rows.shape == (n,)
    assert int(rows.max()) < r and int(cols.max()) < c and int(rows.min()) >= 0
    return torch.bincount(rows * c + cols, minlength=r * c).double() / n


def _within_3se(freq, p, n=160_000):
    return abs(float(freq) - p) <= 3 * (p * (1 - p) / n) ** 0.5 + 1e-12


def test_uniform_draw_is_uniform():
    freq = _frequencies("uniform")
    assert all(_within_3se(f, 1 / 16) for f in freq)


def test_published_draw_skew():
    # j = int(16 U); block = 1 if j < 2 else j - 1 (1-based): index 0 gets j in {0, 1, 2}.
    freq = _frequencies("published")
    assert _within_3se(freq[0], 3 / 16)
    assert all(_within_3se(f, 1 / 16) for f in freq[1:14])
    assert freq[14] == 0 and freq[15] == 0


def test_draw_is_reproducible_with_a_generator():
    a = draw_blocks(50, 4, 4, generator=torch.Generator().manual_seed(3))
    b = draw_blocks(50, 4, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="block_draw"):
        draw_blocks(5, 4, 4, draw="skewed")


# ---------------------------------------------------------------- batched == per-sample reference

@pytest.mark.parametrize("selection", ["both", "patch", "peak"])
@pytest.mark.parametrize("r,c", [(4, 4), (3, 5), (2, 2), (5, 3)])
@pytest.mark.parametrize("ties", [False, True])
def test_batched_matches_reference(selection, r, c, ties):
    g = torch.Generator().manual_seed(r * 10 + c)
    F = torch.randn(7, 32, 12, 12, generator=g)
    if ties:  # few distinct values: tied maxima and values equal to nothing in particular
        F = torch.randint(-3, 4, F.shape, generator=g).float()
    cfg = paper(r=r, c=c, selection=selection, alpha=1.0, beta=0.9)
    rows, cols = draw_blocks(7, r, c, generator=g)
    M_ref, sal_ref, sub_ref = dem_reference(F, rows, cols, cfg)
    M = dem_mask(F.flatten(2), rows, cols, r, c, selection).view_as(F)
    assert torch.equal(M, M_ref)
    torch.testing.assert_close(enhance(F, M, cfg.alpha), sal_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(suppress(F, M, cfg.beta), sub_ref, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- the DEM module

def _replay(cfg, F, seed, n_parents=1):
    """Blocks the module draws for maps F stacked n_parents times, from a fresh generator."""
    g = torch.Generator().manual_seed(seed)
    return g, draw_blocks(n_parents * F.shape[0], cfg.r, cfg.c, generator=g, draw=cfg.block_draw)


def _maps(B=4, seed=0):
    return torch.randn(B, 32, 12, 12, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("layers,streams", [(1, 2), (2, 6), (3, 14)])
def test_dual_sas_stream_counts(layers, streams):
    cfg = paper(dem_layers=layers)
    out = DEM(cfg).train()(_maps())
    assert len(out) == streams == cfg.n_streams
    assert all(o.shape == (4, 32, 12, 12) for o in out)


@pytest.mark.parametrize("structure", ["gan", "sas"])
@pytest.mark.parametrize("enhancement", ["none", "salient", "subtle", "dual"])
def test_stream_count_matches_config(structure, enhancement):
    cfg = paper(structure=structure, enhancement=enhancement)
    assert len(DEM(cfg).train()(_maps())) == cfg.n_streams


def test_sas_dual_one_layer_shares_one_draw():
    cfg, F = paper(), _maps()
    sal, sub = DEM(cfg).train()(F, generator=torch.Generator().manual_seed(5))
    _, (rows, cols) = _replay(cfg, F, 5)
    _, sal_ref, sub_ref = dem_reference(F, rows, cols, cfg)
    torch.testing.assert_close(sal, sal_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sub, sub_ref, rtol=1e-6, atol=1e-6)


def test_two_layer_cascade_feeds_each_stream_back():
    cfg, F = paper(dem_layers=2), _maps(B=3)
    out = DEM(cfg).train()(F, generator=torch.Generator().manual_seed(9))
    g, (rows, cols) = _replay(cfg, F, 9)
    _, sal1, sub1 = dem_reference(F, rows, cols, cfg)
    rows2, cols2 = draw_blocks(6, cfg.r, cfg.c, generator=g)  # second layer: both parents at once
    parents = torch.cat([sal1, sub1])
    _, sal2, sub2 = dem_reference(parents, rows2, cols2, cfg)
    expected = [sal1, sub1, sal2[:3], sub2[:3], sal2[3:], sub2[3:]]
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("enhancement", ["salient", "subtle"])
def test_sas_single_enhancement_uses_two_independent_draws(enhancement):
    cfg, F = paper(enhancement=enhancement), _maps()
    out = DEM(cfg).train()(F, generator=torch.Generator().manual_seed(2))
    _, (rows, cols) = _replay(cfg, F, 2, n_parents=2)
    _, sal, sub = dem_reference(torch.cat([F, F]), rows, cols, cfg)
    want = sal if enhancement == "salient" else sub
    torch.testing.assert_close(out[0], want[:4], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[1], want[4:], rtol=1e-6, atol=1e-6)


def test_gan_dual_merges_as_mean_of_salient_and_subtle():
    cfg, F = paper(structure="gan", alpha=1.0, beta=0.5), _maps()
    (merged,) = DEM(cfg).train()(F, generator=torch.Generator().manual_seed(4))
    _, (rows, cols) = _replay(cfg, F, 4)
    M, sal, sub = dem_reference(F, rows, cols, cfg)
    torch.testing.assert_close(merged, (sal + sub) / 2, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(merged, F + 0.25 * M * F, rtol=1e-6, atol=1e-6)


def test_none_and_eval_return_plain_maps():
    F = _maps()
    out = DEM(paper(enhancement="none")).train()(F)
    assert len(out) == 2 and out[0] is F and out[1] is F
    assert DEM(paper(structure="gan", enhancement="none")).train()(F)[0] is F
    for dem_layers in (1, 3):
        out = DEM(paper(dem_layers=dem_layers)).eval()(F)
        assert len(out) == 1 and out[0] is F


def test_published_profile_is_patch_only_with_skewed_draw():
    cfg = smoke(block_draw="published", selection="patch")
    F = _maps()
    sal, sub = DEM(cfg).train()(F, generator=torch.Generator().manual_seed(8))
    _, (rows, cols) = _replay(cfg, F, 8)
    _, sal_ref, sub_ref = dem_reference(F, rows, cols, cfg)
    torch.testing.assert_close(sal, sal_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sub, sub_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("field,value", [("structure", "triple"), ("enhancement", "both"),
                                         ("selection", "all"), ("block_draw", "x"), ("dem_layers", 0)])
def test_bad_config_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        DEM(paper(**{field: value}))


def test_dem_rejects_flat_input():
    with pytest.raises(ValueError, match="B, C, H, W"):
        DEM(paper()).train()(torch.randn(2, 32, 144))
