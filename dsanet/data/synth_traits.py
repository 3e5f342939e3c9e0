"""Latent identities of the embedded benchmark: names, splits, shared and private traits.

Nothing here renders a signal: the identity table and the per-sample *realised* trait values are
drawn from small numpy Generators, so the calibration (``synthetic.calibrate``) can be computed for
thousands of identities in well under a second, and rendering (``synth_voice``, ``synth_face``)
only consumes the values planned here.

Generative model (all latent values in standard-normal units):

* categorical: gender (m/f, balanced inside each split), age in years, a nationality group;
* five **shared** continuous traits ``SHARED`` with identity value ``z``; modality ``m`` expresses
  ``e_m = a z + sqrt(1 - a^2) u_m`` where ``a = shared_strength`` and ``u_m`` is private noise;
* every sample realises ``r = e_m + s_session + s_sample`` (``SESSION_SD``, ``SAMPLE_SD``);
* voice: size -> vocal-tract length, width -> f0, tone -> breathiness, age -> jitter/tremor,
  region -> accent (vowel-space shift); face: size -> face length, width -> jaw width,
  tone -> brow thickness, age -> grey hair/wrinkles, region -> skin tone;
* private traits (speaking rate, spectral tilt, hair colour/style, eye spacing, ...) that do not
  carry over between modalities.
"""
from __future__ import annotations

import string

import numpy as np
import pandas as pd

SHARED = ("size", "width", "tone", "age", "region")
SESSION_SD = 0.3   # per-session drift of every realised shared trait (latent units)
SAMPLE_SD = 0.3    # per-sample jitter on top of it

# Invented nationality groups (no real country), their frequencies (skewed like VoxCeleb1's
# USA-heavy mix) and the centre of each group on the latent "region" axis.
NATIONALITIES = ("Varlo", "Menthe", "Osrin", "Kadeh")
NATIONALITY_P = np.array([0.55, 0.2, 0.15, 0.1])
REGION_CENTRE = np.array([-0.9, 0.1, 1.0, 1.9])
REGION_SD = 0.45   # spread of an identity around its group's centre, before standardising

AGE_RANGE = (20.0, 70.0)
AGE_MEAN, AGE_SD = 45.0, 50.0 / np.sqrt(12.0)   # uniform(20, 70)

# Initial-letter frequencies of the names in Wen et al.'s split (vox1_*.csv, letter counts).
LETTER_COUNTS = dict(zip(string.ascii_uppercase, (
    76, 40, 64, 89, 40, 15, 32, 28, 12, 185, 86, 54, 126, 41, 16, 40, 1, 76, 113, 64, 2, 19, 23,
    1, 2, 9)))
SPLIT_LETTERS = {"val": "AB", "test": "CDE", "train": "FGHIJKLMNOPQRSTUVWXYZ"}
REAL_FRACTIONS = {"val": 112 / 1225, "test": 189 / 1225}   # Table II

STREAMS = {"traits": 0, "name": 1, "voice_plan": 2, "face_plan": 3, "voice": 4, "face": 5}

_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ae", "ia", "y")
_ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "th", "br", "dr", "tr", "ch", "sh")
_CLUSTER = {"B": "rl", "C": "rlh", "D": "r", "F": "rl", "G": "rl", "K": "rl", "P": "rl",
            "S": "hkt", "T": "rh", "V": "r"}
_FIRST_END = {"m": ("n", "ric", "lan", "ven", "dus", "mor", "sam", "riel", "tas", "nor"),
              "f": ("na", "lia", "elle", "rine", "lys", "ra", "wen", "sie", "beth", "nia")}
_LAST_END = ("lest", "vard", "nov", "wyn", "ley", "ren", "dale", "mar", "vik", "rose", "nander",
             "dith", "santo", "reno", "kova", "holt", "quist", "ston", "mere", "lind")


def rng_for(seed: int, index: int, stream: str, *more: int) -> np.random.Generator:
    """Generator for one (seed, identity draw index, stream[, sample ...]): order-independent."""
    return np.random.default_rng([int(seed), int(index), STREAMS[stream], *map(int, more)])


# ----------------------------------------------------------------------------- names and splits

def split_sizes(n: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Identities per split; each split gets at least 2 (one per gender)."""
    if n < 6:
        raise ValueError(f"n_identities must be >= 6 (two per split), got {n}")
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions val={val_fraction}, test={test_fraction}")
    n_val = max(2, round(n * val_fraction))
    n_test = max(2, round(n * test_fraction))
    if n - n_val - n_test < 2:
        raise ValueError(f"split fractions leave fewer than 2 training identities of {n}")
    return {"val": n_val, "test": n_test, "train": n - n_val - n_test}


def _syllable(rng: np.random.Generator) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS)


def _first_syllable(rng: np.random.Generator, letter: str) -> str:
    if letter in "AEIOUY":
        return letter + rng.choice(_ONSETS[:16]) + rng.choice(_VOWELS)
    if letter == "Q":
        return "Qu" + rng.choice(_VOWELS[:5])
    cluster = rng.choice(list(_CLUSTER[letter])) if letter in _CLUSTER and rng.random() < 0.3 else ""
    return letter + cluster + rng.choice(_VOWELS)


def invent_name(rng: np.random.Generator, letter: str, gender: str) -> str:
    """``First_Last`` from invented syllables; the first name starts with ``letter``."""
    first = _first_syllable(rng, letter) + ("" if rng.random() < 0.6 else _syllable(rng))
    first = first + rng.choice(_FIRST_END[gender])
    last = _syllable(rng) + ("" if rng.random() < 0.6 else _syllable(rng)) + rng.choice(_LAST_END)
    return f"{first.capitalize()}_{last.capitalize()}"


def _letter(rng: np.random.Generator, split: str) -> str:
    letters = SPLIT_LETTERS[split]
    w = np.array([LETTER_COUNTS[c] for c in letters], float)
    return letters[rng.choice(len(letters), p=w / w.sum())]


def assign_names(seed: int, splits: list[str], genders: list[str]) -> list[str]:
    """One unique name per draw index whose initial places it in its split (A-B val, C-E test)."""
    names, seen = [], set()
    for j, (split, gender) in enumerate(zip(splits, genders)):
        rng = rng_for(seed, j, "name")
        name = invent_name(rng, _letter(rng, split), gender)
        while name in seen:   # collisions are resolved in draw order, deterministically
            name = invent_name(rng, name[0], gender)
        seen.add(name)
        names.append(name)
    return names


# ----------------------------------------------------------------------------- identity traits

def _region_z(group: int, rng: np.random.Generator) -> float:
    """Latent region value, standardised over the whole group mixture."""
    mean = float(NATIONALITY_P @ REGION_CENTRE)
    var = float(NATIONALITY_P @ (REGION_CENTRE - mean) ** 2) + REGION_SD ** 2
    return (REGION_CENTRE[group] + REGION_SD * rng.standard_normal() - mean) / np.sqrt(var)


def _private_traits(rng: np.random.Generator, gender: str, age: float) -> dict:
    """Traits one modality shows and the other does not."""
    male = gender == "m"
    return {
        # voice
        "speech_rate": float(np.exp(0.15 * rng.standard_normal())),   # syllables x nominal
        "spectral_tilt": float(1.5 * rng.standard_normal()),           # dB/octave
        "pitch_range": float(np.exp(0.3 * rng.standard_normal())),     # intonation depth
        "vowel_bias": int(rng.integers(0, 10)),                        # favoured vowel
        # face
        **dict(zip(("skin_dr", "skin_dg", "skin_db"), rng.normal(0, 8, 3))),  # RGB offset
        "hair_colour": int(rng.integers(0, 5)),
        "hair_style": int(rng.integers(0, 2)) + (0 if male else 2),      # 0/1 short, 2/3 long
        "bald": bool(male and rng.random() < (age - 30) / 60),
        "beard": bool(male and rng.random() < 0.4),
        "eye_spacing": float(0.42 + 0.04 * rng.standard_normal()),
        "eye_size": float(np.exp(0.12 * rng.standard_normal())),
        "iris": int(rng.integers(0, 4)),
        "mouth_width": float(np.exp(0.12 * rng.standard_normal())),
        "nose_length": float(np.exp(0.1 * rng.standard_normal())),
    }


def identity_traits(seed: int, j: int, gender: str, shared_strength: float) -> dict:
    """Latent traits of draw index ``j``: shared z, modality expressions e_v / e_f, private."""
    rng = rng_for(seed, j, "traits")
    age = float(rng.uniform(*AGE_RANGE))
    group = int(rng.choice(len(NATIONALITIES), p=NATIONALITY_P))
    z = rng.standard_normal(len(SHARED))
    z[SHARED.index("age")] = (age - AGE_MEAN) / AGE_SD
    z[SHARED.index("region")] = _region_z(group, rng)
    a = float(shared_strength)
    b = float(np.sqrt(max(0.0, 1.0 - a * a)))
    e_v = a * z + b * rng.standard_normal(len(SHARED))    # (5,) what the voice shows
    e_f = a * z + b * rng.standard_normal(len(SHARED))    # (5,) what the face shows
    row = {"age": round(age, 2), "nationality": NATIONALITIES[group]}
    for i, t in enumerate(SHARED):
        row[f"z_{t}"], row[f"v_{t}"], row[f"f_{t}"] = z[i], e_v[i], e_f[i]
    row.update(_private_traits(rng, gender, age))
    return row


def make_identities(n: int, seed: int, shared_strength: float,
                    val_fraction: float = REAL_FRACTIONS["val"],
                    test_fraction: float = REAL_FRACTIONS["test"]) -> pd.DataFrame:
    """Identity table, one row per identity, sorted by name; ids id20001.. in that order.

    Columns: ``j`` (draw index: the key of every Generator), ``voice_id``, ``face_id``, ``gender``,
    ``split``, ``set`` ("test" for E-names, as VoxCeleb1's test speakers), age, nationality,
    ``z_*`` (shared latent), ``v_*`` / ``f_*`` (expressed in voice / face) and private traits.
    """
    if not 0.0 <= shared_strength <= 1.0:
        raise ValueError(f"shared_strength must lie in [0, 1], got {shared_strength}")
    sizes = split_sizes(n, val_fraction, test_fraction)
    splits = [s for s in ("val", "test", "train") for _ in range(sizes[s])]
    starts = {"val": 0, "test": sizes["val"], "train": sizes["val"] + sizes["test"]}
    genders = ["mf"[(j - starts[s]) % 2] for j, s in enumerate(splits)]
    names = assign_names(seed, splits, genders)
    rows = [dict(j=j, face_id=nm, gender=g, split=s, **identity_traits(seed, j, g, shared_strength))
            for j, (nm, g, s) in enumerate(zip(names, genders, splits))]
    df = pd.DataFrame(rows).sort_values("face_id", kind="stable").reset_index(drop=True)
    df.insert(1, "voice_id", [f"id{20001 + i}" for i in range(len(df))])
    df.insert(5, "set", np.where(df.face_id.str[0] == "E", "test", "dev"))
    return df


# ----------------------------------------------------------------------------- per-sample realisation

def session_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct sorted 11-character video-like ids (as VoxCeleb's YouTube ids)."""
    alphabet = np.array(list(string.ascii_letters + string.digits + "-_"))
    ids = {"".join(rng.choice(alphabet, 11)) for _ in range(n)}
    while len(ids) < n:
        ids.add("".join(rng.choice(alphabet, 11)))
    return sorted(ids)


def realise(expressed: np.ndarray, n_samples: int, n_sessions: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample realised shared traits: ``(session index (n,), r (n, 5))``.

    Samples are spread over sessions in contiguous blocks; ``r = e + s_session + s_sample``.
    """
    n_sessions = max(1, min(n_sessions, n_samples))
    session = np.arange(n_samples) * n_sessions // n_samples                  # (n,)
    drift = SESSION_SD * rng.standard_normal((n_sessions, len(SHARED)))      # (S, 5)
    jitter = SAMPLE_SD * rng.standard_normal((n_samples, len(SHARED)))       # (n, 5)
    return session, expressed[None, :] + drift[session] + jitter
