"""DSANet's networks: backbones, DEM (eqs. 1-9), SAS (10-13), heads and the assembled model."""
from .backbones import build_backbone
from .dem import DEM, block_mask, dem_mask, draw_blocks, enhance, peak_mask, salient_mask, suppress
from .dsanet import FACE, VOICE, DSANet, PairOutput, TupleOutput
from .heads import MatchingClassifier, RetrievalClassifier
from .sas import Discriminator, Generator, SelfAttention, simulate_stream_dropout

__all__ = [
    "DEM", "DSANet", "Discriminator", "FACE", "Generator", "MatchingClassifier", "PairOutput",
    "RetrievalClassifier", "SelfAttention", "TupleOutput", "VOICE", "block_mask", "build_backbone",
    "dem_mask", "draw_blocks", "enhance", "peak_mask", "salient_mask", "simulate_stream_dropout",
    "suppress",
]
