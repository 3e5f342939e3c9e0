"""Class activation maps of faces for Fig. 7: Grad-CAM on the face backbone's last map.

For faces x (N, 3, S, S) the face backbone gives maps A (N, C, H, W); the evaluation path (no
DEM, eval BatchNorm) turns them into embeddings h (N, D). The *matching score* s_n is what the
evaluator ranks candidates by:

* ``"distance"``: s_n = -||h_n - v_n||, v_n the embedding of the matching voice (eq. 22's d);
* ``"classifier"``: the matching classifier's logit of the true candidate, with the face placed
  first among k candidates whose other k-1 embeddings are given (eq. 15's m_j).

Grad-CAM (Selvaraju et al., 2017): weights w_nc = mean_{h,w} ds_n / dA_nchw, map
relu(sum_c w_nc A_nc) (N, H, W), bilinearly upsampled to S x S and scaled to [0, 1] per face.
The model is in eval mode, so the faces of a batch do not interact and one backward pass on
sum_n s_n gives every face's gradient at once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SCORES = ("distance", "classifier")


def matching_score(model, h: Tensor, voice: Tensor, score: str = "distance",
                   negatives: Tensor | None = None) -> Tensor:
    """s (N,) for face embeddings h (N, D) against their voices (N, D); see the module docstring.

    ``negatives`` (N, k-1, D): the other candidates for ``"classifier"`` (k = the classifier's k).
    """
    if score == "distance":
        return -(h - voice).norm(dim=1)                                   # (N,)
    if score == "classifier":
        if negatives is None:
            raise ValueError("matching_score: the classifier score needs negatives (N, k-1, D), got None")
        cands = torch.cat([h.unsqueeze(1), negatives], dim=1)            # (N, k, D), true first
        return model.classifier(voice, cands)[:, 0]                      # (N,)
    raise ValueError(f"matching_score: score must be one of {SCORES}, got {score!r}")


def grad_cam(model, faces: Tensor, voice: Tensor, score: str = "distance",
             negatives: Tensor | None = None) -> Tensor:
    """Grad-CAM maps (N, S, S) in [0, 1] of normalised faces (N, 3, S, S) w.r.t. the score.

    voice: (N, D) embeddings of each face's matching voice (detached); the model's train/eval
    mode is restored afterwards.
    """
    if faces.dim() != 4 or voice.shape[0] != faces.shape[0]:
        raise ValueError(f"grad_cam expects faces (N, 3, S, S) and voice (N, D), got "
                         f"{tuple(faces.shape)} and {tuple(voice.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            A = model.face_backbone(faces).detach().requires_grad_(True)       # (N, C, H, W)
            h = model.generator(A)                                              # (N, D)
            s = matching_score(model, h, voice.detach(), score, negatives)      # (N,)
            (grad,) = torch.autograd.grad(s.sum(), A)                           # (N, C, H, W)
    finally:
        model.train(was_training)
    w = grad.mean(dim=(2, 3), keepdim=True)                                     # (N, C, 1, 1)
    cam = F.relu((w * A.detach()).sum(dim=1, keepdim=True))                     # (N, 1, H, W)
    cam = F.interpolate(cam, size=faces.shape[-2:], mode="bilinear", align_corners=False)
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (cam / peak).squeeze(1)                                              # (N, S, S)


def cam_energy(cams: Tensor, region: Tensor) -> Tensor:
    """Share of each map's total activation inside a boolean region (S, S): (N,) in [0, 1]."""
    total = cams.flatten(1).sum(1).clamp_min(1e-12)
    return (cams * region.to(cams.dtype)).flatten(1).sum(1) / total
