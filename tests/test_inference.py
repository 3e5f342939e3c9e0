"""Using a trained model: ``dsanet.load``, ``match`` / ``embed``, ``evaluate --list``, ``card``.

One smoke model is trained on the tiny tree of conftest.py (module fixture); expected values are
worked out here from the embeddings by the formulas (negative Euclidean distance, accuracy,
ROC AUC, average precision), not by the code that computes them in the package.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

import dsanet
from dsanet.__main__ import main
from conftest import CLIP_SECONDS, N_FACES, TINY_IDENTITIES

SMOKE = ["--profile", "smoke", "--set", "face_size=16", "--set", "sampling=tuple",
         "--set", "batch_size=8", "--set", "eval_ks=2,3",
         "--set", "bootstrap=20", "--set", "eval_tuples=30", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tiny_tree, tmp_path_factory):
    """(tree, run folder, checkpoint) of a 2-step smoke model on the tiny tree."""
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("inference")
    run = tmp / "run"
    assert main(["train", *SMOKE, "--data", str(tiny_tree.root), "--out", str(run), "--steps", "2",
                 "--set", f"cache_dir={tmp / 'cache'}"]) == 0
    return tiny_tree, run, run / "best.pt"


def voice_file(tree, i: int, clip: int = 0) -> Path:
    vid = TINY_IDENTITIES[i][0]
    return tree.voices / vid / f"s{clip // 2}" / f"{clip % 2:05d}.wav"


def face_file(tree, i: int, j: int = 0) -> Path:
    name = TINY_IDENTITIES[i][1]
    rel = f"sess{j % 2}/{j:08d}.jpg" if i % 2 else f"{j:08d}.jpg"
    return tree.faces / name / rel


def rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# ----------------------------------------------------------------------------- the API

def test_load_gives_a_model_that_ranks_by_distance(trained):
    tree, _, ckpt = trained
    model = dsanet.load(ckpt, device="cpu")
    v = model.embed_voice(voice_file(tree, 2))
    faces = [face_file(tree, i) for i in (2, 3, 4)]
    f = model.embed_face(faces)
    assert v.shape == (model.cfg.embed_dim,) and f.shape == (3, model.cfg.embed_dim)
    by_hand = [-float(np.sqrt(((v.numpy() - f[i].numpy()) ** 2).sum())) for i in range(3)]
    table = model.match(voice=voice_file(tree, 2), faces=faces)
    order = sorted(range(3), key=lambda i: -by_hand[i])
    assert table["index"].tolist() == order
    assert table["candidate"].tolist() == [str(faces[i]) for i in order]
    np.testing.assert_allclose(table["score"], [by_hand[i] for i in order], rtol=1e-5)
    assert table["rank"].tolist() == [1, 2, 3]
    # the other direction, and a waveform / an image instead of files
    back = model.match(face=faces[0], voices=[voice_file(tree, 2), voice_file(tree, 5)])
    assert sorted(back["index"]) == [0, 1] and back["score"].is_monotonic_decreasing
    import soundfile as sf
    from PIL import Image

    wave, _ = sf.read(voice_file(tree, 2), dtype="float32")
    torch.testing.assert_close(model.embed_voice(wave), v)
    torch.testing.assert_close(model.embed_voice((wave, 16000)), v)     # (waveform, rate)
    torch.testing.assert_close(model.embed_face(Image.open(faces[1])), f[1])


def test_front_ends_are_those_of_evaluation(trained):
    """An item embedded from its file equals its row in the evaluation embeddings."""
    from dsanet.data.cache import build_cache
    from dsanet.data.layout import load_index
    from dsanet.engine.evaluate import embed_split

    tree, _, ckpt = trained
    model = dsanet.load(ckpt, device="cpu")
    cached = build_cache(load_index(tree.root), model.cfg, "test")
    emb = embed_split(model.net, cached, model.cfg)
    vt, ft = cached.voice_table, cached.face_table
    for i in (0, len(vt) - 1):
        torch.testing.assert_close(model.embed_voice(tree.voices / vt.path[i]), emb.voice[i],
                                   rtol=1e-4, atol=1e-4)
    for i in (0, len(ft) - 1):
        torch.testing.assert_close(model.embed_face(tree.faces / ft.path[i]), emb.face[i],
                                   rtol=1e-4, atol=1e-4)


def test_bad_inputs_get_the_data_layer_errors(trained, tmp_path):
    from dsanet.data.layout import DataError

    tree, _, ckpt = trained
    model = dsanet.load(ckpt, device="cpu")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    with pytest.raises(DataError, match="broken.wav"):
        model.embed_voice(bad)
    with pytest.raises(DataError, match="nowhere.jpg: file not found"):
        model.embed_face(tmp_path / "nowhere.jpg")
    with pytest.raises(ValueError, match="voice= with faces="):
        model.match(voice=voice_file(tree, 2))


# ----------------------------------------------------------------------------- commands

def test_match_command_prints_the_ranking(trained, capsys):
    tree, _, ckpt = trained
    faces = [face_file(tree, 2), face_file(tree, 3)]
    assert main(["match", "--checkpoint", str(ckpt), "--voice", str(voice_file(tree, 2)),
                 "--faces", *map(str, faces), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    model = dsanet.load(ckpt, device="cpu")
    v, f = model.embed_voice(voice_file(tree, 2)), model.embed_face(faces)
    d = [-float(torch.linalg.vector_norm(v - f[i])) for i in range(2)]
    best = int(np.argmax(d))
    assert rows[0]["candidate"] == str(faces[best]) and rows[0]["rank"] == 1
    assert rows[0]["score"] == pytest.approx(d[best], rel=1e-5)


def test_embed_command_exports_every_item(trained, tmp_path):
    tree, _, ckpt = trained
    out = tmp_path / "emb.csv"
    assert main(["embed", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    n_ids = len(TINY_IDENTITIES)
    assert (table.modality == "voice").sum() == n_ids * len(CLIP_SECONDS)      # 11 x 4
    assert (table.modality == "face").sum() == n_ids * N_FACES                 # 11 x 3
    dims = [c for c in table.columns if c.startswith("e") and c[1:].isdigit()]
    assert len(dims) == dsanet.load(ckpt).cfg.embed_dim
    row = table[(table.modality == "voice") & (table.path == rel(voice_file(tree, 9), tree.voices))]
    assert row.identity.item() == TINY_IDENTITIES[9][0] and row.split.item() == "train"
    expect = dsanet.load(ckpt, device="cpu").embed_voice(voice_file(tree, 9)).numpy()
    np.testing.assert_allclose(row[dims].to_numpy()[0], expect, rtol=1e-4, atol=1e-5)
    npz = tmp_path / "emb.npz"
    assert main(["embed", "--checkpoint", str(ckpt), "--out", str(npz), "--splits", "test"]) == 0
    arrays = np.load(npz)
    assert arrays["embeddings"].shape == (6 * len(CLIP_SECONDS) + 6 * N_FACES, len(dims))


# ----------------------------------------------------------------------------- evaluate --list

def _evaluate_list(ckpt, lst, out, *extra) -> pd.DataFrame:
    assert main(["evaluate", "--checkpoint", str(ckpt), "--out", str(out), "--list", str(lst),
                 "--set", "bootstrap=20", *extra]) == 0
    return pd.read_csv(out / "metrics.csv")


TEST_IDS = [2, 3, 4, 5, 6, 7]   # C, D, E names: the test split


def test_matching_and_official_lists_score_by_hand(trained, tmp_path):
    tree, _, ckpt = trained
    model = dsanet.load(ckpt, device="cpu")
    lines, official, correct = [], [], []
    for n, a in enumerate(TEST_IDS):
        b = TEST_IDS[(n + 1) % 6]
        v, fa, fb = voice_file(tree, a, n % 4), face_file(tree, a), face_file(tree, b, 1)
        lines.append(f"{rel(v, tree.voices)} {rel(fa, tree.faces)} {rel(fb, tree.faces)}")
        ev_, ef = model.embed_voice(v), model.embed_face([fa, fb])
        correct.append(torch.linalg.vector_norm(ev_ - ef[0]) < torch.linalg.vector_norm(ev_ - ef[1]))
        # the published F-V list: face, two audios, the label names the matching one
        va, vb = voice_file(tree, a, 1), voice_file(tree, b, 2)
        lab = n % 2
        a1, a2 = (va, vb) if lab == 0 else (vb, va)
        official.append(f"/data/vox1/faces/{rel(fa, tree.faces)} /data/vox1/wav/{rel(a1, tree.voices)} "
                        f"/data/vox1/wav/{rel(a2, tree.voices)} {lab}")
    lst = tmp_path / "match_v2f_2_test.txt"
    lst.write_text("\n".join(lines) + "\n")
    df = _evaluate_list(ckpt, lst, tmp_path / "m")
    row = df[(df.task == "matching") & (df.scorer == "distance")].iloc[0]
    assert row.value == pytest.approx(np.mean(correct)) and row.n == 6 and row.k == 2
    assert row.protocol == lst.name and row.direction == "V-F"
    assert row.ci_low <= row.value <= row.ci_high

    off = tmp_path / "official_test_F2V.txt"
    off.write_text("\n".join(official) + "\n")
    df = _evaluate_list(ckpt, off, tmp_path / "o")
    row = df[(df.task == "matching") & (df.scorer == "distance")].iloc[0]
    ok = []
    for n, a in enumerate(TEST_IDS):
        b = TEST_IDS[(n + 1) % 6]
        f = model.embed_face(face_file(tree, a))
        vs = model.embed_voice([voice_file(tree, a, 1), voice_file(tree, b, 2)])
        ok.append(torch.linalg.vector_norm(f - vs[0]) < torch.linalg.vector_norm(f - vs[1]))
    assert row.direction == "F-V" and row.value == pytest.approx(np.mean(ok)) and row.n == 6


def test_verification_and_retrieval_lists_score_by_hand(trained, tmp_path):
    tree, _, ckpt = trained
    model = dsanet.load(ckpt, device="cpu")
    pairs = [(a, a if n % 2 else TEST_IDS[(n + 2) % 6]) for n, a in enumerate(TEST_IDS * 2)]
    lst = tmp_path / "verify_v2f_test.txt"
    lst.write_text("".join(f"{rel(voice_file(tree, a, 3), tree.voices)} "
                           f"{rel(face_file(tree, b, 2), tree.faces)}\n" for a, b in pairs))
    df = _evaluate_list(ckpt, lst, tmp_path / "v")
    v = model.embed_voice([voice_file(tree, a, 3) for a, _ in pairs])
    f = model.embed_face([face_file(tree, b, 2) for _, b in pairs])
    scores = -torch.linalg.vector_norm(v - f, dim=1).numpy()
    labels = [int(a == b) for a, b in pairs]
    auc = df[(df.task == "verification") & (df.metric == "auc")].iloc[0]
    assert auc.value == pytest.approx(roc_auc_score(labels, scores), abs=1e-9) and auc.n == 12

    # retrieval: 3 face queries against the voices of 4 identities (2 clips each)
    queries, gallery = [2, 3, 4], [(i, c) for i in (2, 3, 4, 5) for c in (0, 1)]
    lst = tmp_path / "retrieval_f2v_test.txt"
    lst.write_text(" ".join(rel(face_file(tree, i), tree.faces) for i in queries) + "\n"
                   + " ".join(rel(voice_file(tree, i, c), tree.voices) for i, c in gallery) + "\n")
    df = _evaluate_list(ckpt, lst, tmp_path / "r")
    q = model.embed_face([face_file(tree, i) for i in queries])
    g = model.embed_voice([voice_file(tree, i, c) for i, c in gallery])
    aps = []
    for qi, ident in enumerate(queries):
        d = torch.linalg.vector_norm(g - q[qi], dim=1).numpy()
        rel_ = np.array([gi == ident for gi, _ in gallery])[np.argsort(d, kind="stable")]
        hits = np.flatnonzero(rel_) + 1                       # ranks of the relevant items
        aps.append(np.mean(np.arange(1, len(hits) + 1) / hits))
    row = df[df.task == "retrieval"].iloc[0]
    assert row.direction == "F-V" and row.value == pytest.approx(np.mean(aps)) and row.n == 3


def test_lists_written_by_protocols_are_scored(trained, tmp_path):
    tree, _, ckpt = trained
    assert main(["protocols", "--data", str(tree.root), "--out", str(tmp_path / "lists"),
                 "--n", "25", "--ks", "2", "--splits", "test"]) == 0
    names = ["match_v2f_2_test.txt", "match_g_f2v_2_test.txt", "verify_v2f_test.txt",
             "retrieval_v2f_test.txt"]
    args = [a for n in names for a in ("--list", str(tmp_path / "lists" / n))]
    assert main(["evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "e"), *args,
                 "--set", "bootstrap=20"]) == 0
    df = pd.read_csv(tmp_path / "e" / "metrics.csv")
    assert set(df.protocol) == set(names)
    assert (df[df.task != "retrieval"].n == 25).all()
    assert ((df.ci_low <= df.value) & (df.value <= df.ci_high)).all()
    doc = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert len(doc["lists"]) == 4


def test_a_list_naming_a_missing_file_fails_naming_it(trained, tmp_path, capsys):
    tree, _, ckpt = trained
    lst = tmp_path / "bad.txt"
    lst.write_text(f"{rel(voice_file(tree, 2), tree.voices)} {rel(face_file(tree, 2), tree.faces)} "
                   "Dan_Do/00000099.jpg\n")
    assert main(["evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "x"),
                 "--list", str(lst)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Dan_Do/00000099.jpg" in err and "line 1" in err and "\n" not in err


# ----------------------------------------------------------------------------- the shipped model

def test_card_ships_a_loadable_checkpoint_and_its_card(trained, tmp_path):
    tree, run, ckpt = trained
    out = tmp_path / "models"
    assert main(["card", "--checkpoint", str(ckpt), "--metrics", str(run / "metrics.json"),
                 "--out", str(out)]) == 0
    weights = out / "dsanet-smoke.pt"
    state = torch.load(weights, weights_only=True)
    assert set(state) >= {"step", "config", "model"} and "optimizers" not in state
    assert weights.stat().st_size < ckpt.stat().st_size * 1.01
    text = (out / "MODEL_CARD.md").read_text()
    doc = json.loads((run / "metrics.json").read_text())
    vf2 = next(m for m in doc["metrics"] if m["task"] == "matching" and m["direction"] == "V-F"
               and m["protocol"] == "U" and m["k"] == 2 and m["scorer"] == "distance")
    assert f"| {100 * vf2['value']:.1f} | [{100 * vf2['ci_low']:.1f}, {100 * vf2['ci_high']:.1f}] |" in text
    assert "not VoxCeleb" in text and "Intended use" in text and "training seed 0" in text
    model = dsanet.load(weights)
    torch.testing.assert_close(model.embed_face(face_file(tree, 2)),
                               dsanet.load(ckpt).embed_face(face_file(tree, 2)))
    other = tmp_path / "other.json"                   # metrics of another checkpoint: refused
    other.write_text(json.dumps({**doc, "checkpoint": str(run / "last.pt")}))
    assert main(["card", "--checkpoint", str(ckpt), "--metrics", str(other),
                 "--out", str(tmp_path / "m2")]) == 2
    assert not (tmp_path / "m2").exists()


def test_interactive_notebooks_write_to_a_scratch_folder():
    from dsanet.reproduce import notebook_out_dir

    assert notebook_out_dir("quick") == Path("runs/notebooks")
    assert notebook_out_dir("paper", None) == Path("runs/notebooks")
    assert notebook_out_dir("smoke") == Path("runs/smoke_reports")
    assert notebook_out_dir("quick", "reports") == Path("reports")   # what reproduce passes


def test_the_split_csvs_ship_inside_the_package():
    from dsanet.data.layout import split_of
    from dsanet.resources import split_csvs

    for path, split in zip(split_csvs(), ("train", "val", "test")):
        table = pd.read_csv(path)
        assert list(table.columns) == ["VoxCeleb1_ID", "VGGFace1_ID", "Gender", "Nationality", "Set"]
        # Wen et al.'s rule: A-B validation, C-E test, the rest train
        assert {split_of(n) for n in table.VGGFace1_ID} == {split}
        assert table.VoxCeleb1_ID.str.match(r"^id1\d{4}$").all()
    sizes = [len(pd.read_csv(p)) for p in split_csvs()]
    assert sizes == [942, 116, 193]      # lines of the files minus their header
