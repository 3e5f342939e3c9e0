"""Voices of the embedded benchmark: a source-filter synthesiser in numpy/scipy.

``plan_voices`` turns an identity's expressed traits into per-clip physical parameters (drawn
without rendering); ``render_voice`` synthesises one clip from them:

1. content: consonant-vowel syllables (nasal, fricative, plosive or pause, then a vowel) at the
   identity's private speaking rate, favouring its private vowel;
2. source: a Rosenberg glottal pulse train at the realised f0 with intonation, declination,
   age-dependent jitter, shimmer and tremor, plus aspiration noise scaled by breathiness;
3. filter (in the STFT domain, one envelope per 8 ms frame): four formant resonances of the vowel
   scaled by 17.5 cm / vocal-tract length and shifted by the accent, frication resonances for
   consonants, a private spectral tilt, then the session's channel colouring (random EQ bumps and
   band limit);
4. room and recording: a short exponentially decaying random impulse response (the session's
   room), coloured background noise at the clip's SNR, and the clip's loudness.
"""
from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.signal import oaconvolve

from dsanet.data.synth_traits import AGE_MEAN, AGE_SD, SHARED, realise, rng_for, session_ids

SR = 16000
N_FFT, HOP = 512, 128
FREQS = np.fft.rfftfreq(N_FFT, 1.0 / SR)                      # (257,)
_F32 = FREQS.astype(np.float32)
_WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)       # periodic Hann: COLA at hop N/4
_HIGHPASS = (FREQS ** 4 / (FREQS ** 4 + 1e12)).astype(np.float32)   # 1 kHz 2nd-order high-pass

F0_BASE = {"m": 120.0, "f": 210.0}   # Hz
F0_SCALE = 0.13                      # log-f0 per latent sd of "width"
VTL_BASE = {"m": 17.0, "f": 14.7}    # cm
VTL_SCALE = 0.06                     # log-VTL per latent sd of "size"
REF_VTL = 17.5                       # the vowel table's tract length

# F1-F4 (Hz) of ten vowels for a 17.5 cm tract (classic averages for adult male speakers).
VOWEL_FORMANTS = np.array([
    [270, 2290, 3010, 3500], [390, 1990, 2550, 3500], [530, 1840, 2480, 3500],
    [660, 1720, 2410, 3500], [730, 1090, 2440, 3400], [570, 840, 2410, 3400],
    [440, 1020, 2240, 3300], [300, 870, 2240, 3300], [640, 1190, 2390, 3400],
    [490, 1350, 1690, 3300]], float)
NASAL_FORMANTS = np.array([250.0, 1100.0, 2300.0, 3400.0])
BANDWIDTHS = np.array([70.0, 100.0, 140.0, 200.0])
# How each vowel's (F1, F2) moves along the accent axis (fixed signs: the "world's" accents).
ACCENT_PATTERN = np.random.default_rng(2023).choice([-1.0, 1.0], size=(10, 2))
ACCENT_SCALE = 0.05                  # relative formant shift per latent sd of "region"

VOWEL, NASAL, FRIC, PLOSIVE, PAUSE = range(5)
_DUR = {NASAL: (0.04, 0.08), FRIC: (0.05, 0.11), PLOSIVE: (0.04, 0.07), PAUSE: (0.12, 0.3)}


# ----------------------------------------------------------------------------- planning

def voice_physics(r: np.ndarray, gender: str) -> dict[str, np.ndarray]:
    """Physical parameters from realised shared traits ``r (n, 5)`` (columns ``SHARED``)."""
    col = {t: r[:, i] for i, t in enumerate(SHARED)}
    return {
        "f0_hz": F0_BASE[gender] * np.exp(F0_SCALE * col["width"]),
        "vtl_cm": VTL_BASE[gender] * np.exp(VTL_SCALE * col["size"]),
        "breathiness": np.clip(0.3 + 0.12 * col["tone"], 0.02, 0.8),
        "voice_age": np.clip(AGE_MEAN + AGE_SD * col["age"], 16.0, 90.0),
        "accent": col["region"],
    }


def plan_voices(ident: dict, n_clips: int, n_sessions: int, nuisance: float,
                seed: int) -> dict[str, np.ndarray]:
    """Columns (arrays of length ``n_clips``) for one identity's clips.

    path, session, realised shared traits ``r_*``, physics (f0, VTL, ...) and nuisance values.
    """
    rng = rng_for(seed, ident["j"], "voice_plan")
    e = np.array([ident[f"v_{t}"] for t in SHARED])
    session, r = realise(e, n_clips, n_sessions, rng)
    n_s = int(session.max()) + 1
    sids = session_ids(rng, n_s)
    clip = np.arange(n_clips) - np.searchsorted(session, session) + 1        # 1.. within session
    nu = float(nuisance)
    sess = {  # per-session recording conditions (rt60 0 means a dry room)
        "rt60_s": nu * rng.uniform(0.1, 0.6, n_s),
        "eq_db": nu * rng.uniform(3.0, 12.0, n_s),
        "lowpass_hz": np.where(rng.random(n_s) < 0.5 * nu, rng.uniform(3400, 7000, n_s), SR / 2),
        "noise_colour": rng.uniform(0.0, 2.0, n_s),
    }
    cols = {
        "voice_id": np.full(n_clips, ident["voice_id"]), "session": np.array(sids)[session],
        "session_index": session, "clip": clip,
        **{f"r_{t}": r[:, i] for i, t in enumerate(SHARED)},
        **voice_physics(r, ident["gender"]),
        **{k: v[session] for k, v in sess.items()},
        "snr_db": rng.uniform(40 - 40 * nu, 50 - 30 * nu, n_clips),
        "gain_db": nu * rng.normal(0.0, 4.0, n_clips),
    }
    paths = [f"voices/{ident['voice_id']}/{s}/{c:05d}.wav" for s, c in zip(cols["session"], clip)]
    return {"path": np.array(paths), **cols}


# ----------------------------------------------------------------------------- STFT helpers

def stft(x: np.ndarray) -> np.ndarray:
    """Centred Hann STFT: ``x (n,) -> (frames, 257)`` complex, frame f centred at f * HOP."""
    pad = np.pad(x.astype(np.float32), (N_FFT // 2, N_FFT // 2 + HOP))
    frames = np.lib.stride_tricks.sliding_window_view(pad, N_FFT)[::HOP]
    return scipy.fft.rfft(frames * _WINDOW, axis=1)


def istft(spec: np.ndarray, n: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`stft`: ``(frames, 257) -> (n,)``."""
    frames = scipy.fft.irfft(spec, n=N_FFT, axis=1) * _WINDOW          # (T, 512)
    t, q = frames.shape[0], N_FFT // HOP
    chunks = frames.reshape(t, q, HOP)
    out = np.zeros((t + q - 1, HOP))
    for i in range(q):                                                # 4 vectorised adds
        out[i:i + t] += chunks[:, i]
    norm = (_WINDOW ** 2).reshape(q, HOP).sum(0)                       # constant WOLA gain
    return (out.ravel() / np.tile(norm, t + q - 1))[N_FFT // 2:N_FFT // 2 + n]


def resonance_power(centre: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Power response of second-order resonances at ``centre (..., K)`` Hz, multiplied over K.

    ``|H(f)|^2 = prod_k c_k^4 / ((c_k^2 - f^2)^2 + (b_k f)^2)``, unit gain at 0 Hz -> (..., 257).
    """
    f2 = _F32 ** 2                                                     # (257,)
    c2 = centre.astype(np.float32)[..., None, :] ** 2                  # (..., 1, K)
    b2 = np.broadcast_to(bw.astype(np.float32), centre.shape)[..., None, :] ** 2
    out = np.ones(centre.shape[:-1] + f2.shape, np.float32)
    for k in range(centre.shape[-1]):                                  # K <= 4 slices
        ck, bk = c2[..., k], b2[..., k]                                # (..., 1)
        out *= ck ** 2 / ((ck - f2) ** 2 + bk * f2)
    return out


def unit_rms(power: np.ndarray) -> np.ndarray:
    """Amplitude envelope ``sqrt(power)``, each frame scaled to unit RMS over frequency."""
    return np.sqrt(power / power.mean(-1, keepdims=True))


# ----------------------------------------------------------------------------- rendering

def content(rng: np.random.Generator, seconds: float, rate: float, vowel_bias: int):
    """Phoneme-like segments: ``kinds, vowels, ends (s), fric_centre (Hz)`` arrays, CV syllables."""
    n_syl = int(seconds * rate / 0.15) + 4
    kinds_c = rng.choice([NASAL, FRIC, PLOSIVE], n_syl, p=[0.3, 0.35, 0.35])
    kinds_c[rng.random(n_syl) < 0.1] = PAUSE
    p = np.ones(10)
    p[vowel_bias] = 4.0
    vowels = rng.choice(10, n_syl, p=p / p.sum())
    lo = np.array([_DUR[k][0] for k in kinds_c])
    hi = np.array([_DUR[k][1] for k in kinds_c])
    dur = np.stack([rng.uniform(lo, hi), rng.uniform(0.07, 0.18, n_syl)], 1) / rate   # (n, 2)
    kinds = np.stack([kinds_c, np.full(n_syl, VOWEL)], 1).ravel()
    ends = rng.uniform(0.0, 0.15) + np.cumsum(dur.ravel())
    fric = np.repeat(rng.choice([2600.0, 4200.0, 6000.0], n_syl), 2)
    return kinds, np.repeat(vowels, 2), ends, dur.ravel(), fric


def _frame_tracks(p: dict, rng: np.random.Generator, n_frames: int) -> dict:
    """Per-frame kind, formants (T, 4), frication centre (T,) and gains for one clip."""
    t = np.arange(n_frames) * HOP / SR
    kinds, vowels, ends, durs, fric = content(rng, n_frames * HOP / SR, p["speech_rate"],
                                              p["vowel_bias"])
    seg = np.minimum(np.searchsorted(ends, t, side="right"), len(ends) - 1)
    kind = np.where(t < ends[0] - durs[0], PAUSE, kinds[seg])
    pos = (t - (ends[seg] - durs[seg])) / durs[seg]
    shift = 1 + ACCENT_SCALE * p["accent"] * ACCENT_PATTERN[vowels[seg]]          # (T, 2)
    form = VOWEL_FORMANTS[vowels[seg]].copy()
    form[:, :2] *= shift
    form[kind == NASAL] = NASAL_FORMANTS
    kernel = np.ones(5) / 5                                                           # coarticulation
    form = np.stack([np.convolve(np.pad(c, 2, mode="edge"), kernel, "valid") for c in form.T], 1)
    scale = REF_VTL / p["vtl_cm"]
    syl_gain = np.exp(0.25 * rng.standard_normal(len(ends)))[seg]
    gv = np.select([kind == VOWEL, kind == NASAL], [1.0, 0.35], 0.0) * syl_gain
    gn = np.select([kind == FRIC, (kind == PLOSIVE) & (pos > 0.6)], [0.3, 0.5], 0.0) * syl_gain
    smooth = np.ones(3) / 3
    return {"form": form * scale, "fric": fric[seg] * np.sqrt(scale),
            "gv": np.convolve(gv, smooth, "same"), "gn": np.convolve(gn, smooth, "same")}


def glottal_source(p: dict, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg pulse-train derivative and aspiration noise, each (n,) with unit RMS."""
    age = p["voice_age"] - 20.0
    jitter, shimmer = 0.004 + 0.00025 * age, 0.03 + 0.002 * age
    tremor = 0.003 + 0.0005 * max(age - 20.0, 0.0)
    tk = np.arange(n // 32 + 2) * 32 / SR                          # (K,) knots at 500 Hz
    f_int = rng.uniform(0.3, 2.5, 3)
    ph = rng.uniform(0, 2 * np.pi, 4)
    inton = np.sin(2 * np.pi * f_int[:, None] * tk + ph[:3, None]).sum(0) / np.sqrt(3)
    log_f0 = (0.08 * p["pitch_range"] * inton - 0.1 * tk / tk[-1]
              + tremor * np.sin(2 * np.pi * 5.5 * tk + ph[3]) + jitter * rng.standard_normal(len(tk)))
    f0 = p["f0_hz"] * np.exp(np.interp(np.arange(n) / SR, tk, log_f0))   # (n,)
    phase = np.cumsum(f0) / SR
    cyc = phase.astype(int)
    phi = (phase - cyc).astype(np.float32)
    oq = 0.55 + 0.35 * p["breathiness"]
    tp, tn = 0.7 * oq, 0.3 * oq
    flow = np.where(phi < tp, 0.5 * (1 - np.cos(np.pi * phi / tp)),
                    np.where(phi < tp + tn, np.cos(0.5 * np.pi * (phi - tp) / tn), 0.0))
    flow *= (1 + shimmer * rng.standard_normal(cyc[-1] + 1))[cyc]
    src = np.diff(flow, prepend=0.0)
    asp = rng.standard_normal(n) * (0.3 + flow)
    src, asp = src.astype(np.float32), asp.astype(np.float32)
    return src / (src.std() + 1e-12), asp / (asp.std() + 1e-12)


def channel_db(rng: np.random.Generator, eq_db: float, lowpass_hz: float) -> np.ndarray:
    """A session's channel colouring: three random bumps on log-frequency plus a band limit."""
    logf = np.log2(np.maximum(FREQS, 20.0))
    centre = rng.uniform(np.log2(150), np.log2(7000), 3)
    width = rng.uniform(0.4, 1.5, 3)
    gain = eq_db * rng.uniform(-1, 1, 3)
    bumps = (gain * np.exp(-0.5 * ((logf[:, None] - centre) / width) ** 2)).sum(1)
    return bumps - 40.0 / (1 + np.exp(-(FREQS - lowpass_hz) / 150.0))


def room_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Direct path plus an exponentially decaying noise tail (60 dB in ``rt60`` seconds)."""
    if rt60 <= 0.01:
        return np.ones(1)
    t = np.arange(int(min(1.2 * rt60, 0.6) * SR)) / SR
    tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60)
    tail[:int(0.002 * SR)] = 0.0
    h = tail / np.sqrt((tail ** 2).sum()) * min(1.0, rt60 / 0.4)
    h[0] = 1.0
    return h


def coloured_noise(rng: np.random.Generator, n: int, colour: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1 / f^colour."""
    spec = scipy.fft.rfft(rng.standard_normal(n, dtype=np.float32))
    freqs = np.maximum(scipy.fft.rfftfreq(n, 1.0 / SR), 50.0).astype(np.float32)
    spec *= freqs ** np.float32(-colour / 2)
    x = scipy.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def envelopes(p: dict, tracks: dict) -> tuple[np.ndarray, np.ndarray]:
    """Vocal-tract envelope (formants + tilt) and frication envelope, each (T, 257) unit RMS."""
    tilt_db = (p["spectral_tilt"] - 4.0 * p["breathiness"]) * np.log2(np.maximum(FREQS, 100.0) / 500.0)
    bw = BANDWIDTHS * (1 + 0.5 * p["breathiness"])
    env_v = unit_rms(resonance_power(tracks["form"], bw) * (10 ** (tilt_db / 10)).astype(np.float32))
    fc = tracks["fric"][:, None]                                          # (T, 1)
    env_f = unit_rms(resonance_power(fc, 0.6 * fc) * _HIGHPASS)
    return env_v, env_f


def record(y: np.ndarray, p: dict, rng: np.random.Generator,
           session_rng: np.random.Generator) -> np.ndarray:
    """Room, background noise at the clip's SNR and loudness: float ``(n,)`` -> int16 ``(n,)``."""
    n = len(y)
    y = oaconvolve(y, room_response(session_rng, p["rt60_s"]).astype(np.float32))[:n]
    y = y.astype(np.float64) / (y.std() + 1e-12)
    y = y + coloured_noise(rng, n, p["noise_colour"]) * 10 ** (-p["snr_db"] / 20)
    y *= 10 ** ((-23.0 + p["gain_db"]) / 20) / (y.std() + 1e-12)
    y /= max(1.0, np.abs(y).max() / 0.99)
    return np.round(y * 32767).astype(np.int16)


def render_voice(p: dict, n: int, rng: np.random.Generator,
                 session_rng: np.random.Generator) -> np.ndarray:
    """One clip ``(n,)`` int16 from clip parameters ``p`` (identity's private traits merged in).

    ``rng`` draws the clip's content and noise; ``session_rng`` the session's channel and room,
    so every clip of a session shares them.
    """
    tracks = _frame_tracks(p, rng, n // HOP + 2)
    src, asp = glottal_source(p, rng, n)
    noise = rng.standard_normal(n, dtype=np.float32)
    env_v, env_f = envelopes(p, tracks)                                    # (T, 257) each
    eq = (10 ** (channel_db(session_rng, p["eq_db"], p["lowpass_hz"]) / 20)).astype(np.float32)
    voiced = stft(src + np.float32(0.6 * p["breathiness"]) * asp)          # glottal + aspiration
    gv, gn = (tracks[k][:, None].astype(np.float32) for k in ("gv", "gn"))  # (T, 1)
    spec = voiced * (env_v * gv) + stft(noise) * (env_f * gn)              # (T, 257)
    return record(istft(spec * eq, n), p, rng, session_rng)
