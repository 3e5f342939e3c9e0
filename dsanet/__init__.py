"""dsanet: a reproducible companion to DSANet (Wang et al., IEEE TMM 2023).

Dual enhancement mechanism (DEM, eqs. 1-9), siamese adversarial structure (SAS, eqs. 10-13),
adaptive masked cross-entropy (AMCE, eqs. 14-20), structured metric (21-24) and the retrieval
extension (25-27), with the data, training and evaluation around them.

``dsanet.load(checkpoint)`` gives a trained model that embeds voices and faces and ranks
candidates (:mod:`dsanet.inference`). Profiles are in :mod:`dsanet.config` (``dsanet.config.quick()`` ...); the paper's published
numbers are in :mod:`dsanet.paper`.
"""
from .config import Config, get_profile

__version__ = "0.1.0"
__all__ = ["Config", "get_profile", "load", "__version__"]


def load(checkpoint, device: str | None = None, **overrides):
    """A trained model (:class:`dsanet.inference.Matcher`) from a checkpoint written by train.

    ``model.match(voice="a.wav", faces=["f1.jpg", "f2.jpg"])`` ranks the faces with scores;
    ``model.embed_voice`` / ``model.embed_face`` give the embeddings (torch is imported here,
    not by ``import dsanet``).
    """
    from .inference import load as _load

    return _load(checkpoint, device, **overrides)
