"""Data: on-disk layout and split (layout), front-ends (frontends), decoded-input cache (cache,
cache_files), a split's items (items), every tuple and pair draw (sampling, in_batch), list files
(lists), the ``protocols`` command (protocols), vectorised batch gathering (batches).

The embedded benchmark generator lives in :mod:`dsanet.data.synthetic` (import it directly;
synth_traits, synth_voice, synth_face, synth_calibration and synth_cli are its parts);
:mod:`dsanet.data.embedded` says which preset a profile uses and generates it (``ensure_data``).
"""
from .batches import face_batch, matching_batch, pair_batch, voice_batch
from .cache import CachedSplit, build_cache, load_cache
from .frontends import Spectrogram, crop_frames, face_transform, load_face, load_wav
from .layout import DataError, DataIndex, load_index, read_meta, split_of
from .protocols import (
    PairSampler, ProtocolList, TupleSampler, matching_tuples, read_list, retrieval_sets,
    training_sampler, verification_pairs, write_list,
)

__all__ = [
    "CachedSplit", "DataError", "DataIndex", "PairSampler", "ProtocolList", "Spectrogram",
    "TupleSampler", "build_cache", "crop_frames", "face_batch", "face_transform", "load_cache",
    "load_face", "load_index", "load_wav", "matching_batch", "matching_tuples", "pair_batch",
    "read_list", "read_meta", "retrieval_sets", "split_of", "training_sampler",
    "verification_pairs", "voice_batch", "write_list",
]
