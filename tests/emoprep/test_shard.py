"""emoprep.shard and `emoprep shard`: round trip, split invariants, determinism, atomic replacement, bad input."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep.cli import main
from shardformat import MEMBERS, SAMPLE_KEYS, SHARD_NAME, SHARED_EMOTIONS, encode_frames

from emoprep.corpus.base import RandomSplit
from emoprep.shard import plan_shard_set, random_parts, seeded_order, write_shards
from emoprep.verify import load_index, load_splits
from shardformat.reader import decode_frames, read_sample
from tests.shards.reading import tar_samples
from tests.emoprep.work_factory import FakeUtterance, default_utterances, face_frames, make_shards, make_work


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    utterances = default_utterances() + [FakeUtterance("Ses02F_impro01_F099", "sad", 4, 2000, status="failed")]
    return make_work(tmp_path_factory.mktemp("work"), utterances)


@pytest.fixture(scope="module")
def shards(work, tmp_path_factory) -> Path:
    return make_shards(work, tmp_path_factory.mktemp("shards"))


def manifest(work: Path) -> list[dict]:
    return pq.read_table(work / "manifest.parquet").to_pylist()


def keys_of(shards: Path, names: list[str]) -> list[str]:
    return [raw.key for name in names for raw in tar_samples(shards / name)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(np.float64) - b) ** 2))


def run(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------- round trip and tar layout

def test_every_ok_sample_round_trips_audio_exactly_and_frames_above_38_db(work, shards):
    rows = {row["utterance_id"]: row for row in manifest(work) if row["status"] == "ok"}
    seen = set()
    for entry in load_index(shards).entries:
        for raw in tar_samples(shards / entry.file):
            key, members = raw.key, raw.members
            sample = read_sample(raw, SHARED_EMOTIONS)
            row = rows[key]
            assert members["flac"] == (work / row["audio_path"]).read_bytes()
            expected_audio, _ = sf.read(work / row["audio_path"], dtype="int16")
            np.testing.assert_array_equal(sample.audio, expected_audio)
            assert psnr(sample.frames, np.load(work / row["frames_path"])) > 38
            fields = sample.meta.fields
            for column in ("corpus", "speaker", "gender", "emotion", "corpus_label", "group", "label_policy",
                           "start", "region", "n_samples", "n_frames", "face_ratio", "detector"):
                assert fields[column] == row[column], (key, column)
            assert fields["extra"] == json.loads(row["extra"])
            assert fields["source"] == row["video_file"].removeprefix("/corpus/")
            assert fields["end"] == pytest.approx(row["start"] + row["n_samples"] / 16_000)
            assert fields["format_version"] == 2 and sorted(fields) == sorted(SAMPLE_KEYS[2])
            seen.add(key)
    assert seen == set(rows)  # every ok utterance once; the failed one is not there
    assert "Ses02F_impro01_F099" not in seen


def test_tar_members_are_grouped_in_format_order_with_neutral_headers(shards):
    for entry in load_index(shards).entries:
        with tarfile.open(shards / entry.file) as tar:
            infos = tar.getmembers()
        names = [info.name for info in infos]
        keys = [name.partition(".")[0] for name in names[::3]]
        assert names == [f"{key}.{ext}" for key in keys for ext in MEMBERS]
        assert all((i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) == (0, 0, 0, "", "", 0o644) for i in infos)


def test_index_lists_every_shard_with_size_and_hash(shards):
    import hashlib

    index = load_index(shards).entries
    assert sorted(e.file for e in index) == sorted(p.name for p in shards.iterdir() if SHARD_NAME.fullmatch(p.name))
    for entry in index:
        data = (shards / entry.file).read_bytes()
        assert entry.bytes == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.samples == len(keys_of(shards, [entry.file]))
        assert 1 <= entry.samples <= 4


def test_stacked_jpeg_keeps_frames_apart():
    frames = np.zeros((3, 96, 96, 3), np.uint8)
    frames[1] = 255  # a white frame between black ones: any bleed across the seams would show
    decoded = decode_frames(encode_frames(frames), 3)
    assert decoded[0].max() <= 2 and decoded[2].max() <= 2 and decoded[1].min() >= 253


def test_encode_frames_refuses_wrong_shapes():
    with pytest.raises(ValueError, match="expected uint8"):
        encode_frames(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="1..682"):
        encode_frames(np.zeros((0, 96, 96, 3), np.uint8))


# ---------------------------------------------------------------- splits

def test_splits_are_disjoint_speaker_independent_and_complete(work, shards):
    rows = [row for row in manifest(work) if row["status"] == "ok"]
    all_ids = {row["utterance_id"] for row in rows}
    improvised = {row["utterance_id"] for row in rows if row["group"] == "impro"}
    by_id = {row["utterance_id"]: row for row in rows}
    speaker = {uid: row["speaker"] for uid, row in by_id.items()}
    doc = load_splits(shards)
    splits = doc.splits
    assert doc.emotions == SHARED_EMOTIONS
    assert list(splits) == ["paper", "loso-1", "loso-2", "loso-3"]
    for name, split in splits.items():
        parts = {part: keys_of(shards, split[part].shards) for part in ("train", "val", "test")}
        flat = [key for keys in parts.values() for key in keys]
        assert len(flat) == len(set(flat)), f"{name}: an utterance in two parts"
        assert set(flat) == (improvised if name == "paper" else all_ids)
        for part, keys in parts.items():
            assert split[part].samples == len(keys)
            counts = Counter((by_id[key]["emotion"], by_id[key]["gender"]) for key in keys)
            assert split[part].counts == {e: {g: counts[e, g] for g in "FM"} for e in ("ang", "hap", "neu", "sad")}
        if name.startswith("loso-"):
            k = int(name[5:])
            assert {speaker[key] for key in parts["val"]} == {f"ses{k}F"}
            assert {speaker[key] for key in parts["test"]} == {f"ses{k}M"}
            assert not {speaker[key] for key in parts["train"]} & {f"ses{k}F", f"ses{k}M"}
    # 18 improvised: val and test get round(3.6) = 4, train the other 10
    assert [splits["paper"][p].samples for p in ("train", "val", "test")] == [10, 4, 4]


def test_absent_sessions_are_named_in_omitted(shards):
    omitted = json.loads((shards / "splits.json").read_text())["omitted"]
    assert omitted == {
        "loso-4": "its val and test part(s) would be empty: no ok utterance of ses4F, ses4M in WORK",
        "loso-5": "its val and test part(s) would be empty: no ok utterance of ses5F, ses5M in WORK",
    }


def test_paper_parts_are_exactly_60_20_20_after_rounding():
    paper = RandomSplit("paper", "", frozenset({"impro"}))
    for n in range(3, 60):
        sizes = Counter(random_parts([f"Ses01F_impro01_F{i:03d}" for i in range(n)], paper, seed=0).values())
        fifth = int(np.floor(0.2 * n + 0.5))
        assert (sizes["train"], sizes["val"], sizes["test"]) == (n - 2 * fifth, fifth, fifth)


def test_seeded_order_keeps_each_utterance_in_place_when_others_come_and_go():
    ids = [f"Ses01F_impro01_F{i:03d}" for i in range(50)]
    full = seeded_order(ids, seed=3, purpose="paper")
    subset = ids[::3]
    assert seeded_order(subset, seed=3, purpose="paper") == [uid for uid in full if uid in subset]
    assert seeded_order(ids, seed=4, purpose="paper") != full


def test_shards_are_cut_near_equal_and_mixed_not_id_sorted(work):
    plan = plan_shard_set(work, seed=0, max_samples_per_shard=2)
    sizes: dict[tuple, list[int]] = {}
    for shard in plan.shards:
        sizes.setdefault((shard.speaker, shard.group, shard.part), []).append(len(shard.items))
    assert all(max(s) <= 2 and max(s) - min(s) <= 1 for s in sizes.values())
    whole_groups = plan_shard_set(work, seed=0, max_samples_per_shard=1000).shards
    assert any([i.utterance_id for i in s.items] != sorted(i.utterance_id for i in s.items) for s in whole_groups)


# ---------------------------------------------------------------- determinism and replacement

def test_same_work_and_seed_give_identical_bytes(work, shards, tmp_path):
    again = make_shards(work, tmp_path / "again")
    names = sorted(p.name for p in shards.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (shards / name).read_bytes() == (again / name).read_bytes(), name


def test_another_seed_draws_another_paper_split(work, shards, tmp_path):
    other = make_shards(work, tmp_path / "seed1", seed=1)
    for part in ("train", "test"):
        assert set(keys_of(shards, load_splits(shards).splits["paper"][part].shards)) != \
               set(keys_of(other, load_splits(other).splits["paper"][part].shards))
    assert json.loads((other / "splits.json").read_text())["seed"] == 1


def test_rerun_replaces_the_set_and_removes_only_stale_shards(work, tmp_path):
    out = make_shards(work, tmp_path / "out", max_samples_per_shard=2)
    (out / ".ses1F-script-0000.tar.99999.tmp").write_bytes(b"a killed run's half shard")
    (out / "README.md").write_text("kept")
    (out / "notes.tar").write_bytes(b"not ours")
    before = {p.name for p in out.iterdir() if SHARD_NAME.fullmatch(p.name)}
    result = write_shards(plan_shard_set(work, max_samples_per_shard=64), out)
    after = {p.name for p in out.iterdir() if SHARD_NAME.fullmatch(p.name)}
    assert after == {e.file for e in load_index(out).entries}
    assert set(result.removed) == before - after and result.removed
    assert (out / "README.md").read_text() == "kept" and (out / "notes.tar").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- the command and bad input

def test_command_writes_shards_and_reports(work, tmp_path):
    result = run("shard", "--work", str(work), "--out", str(tmp_path / "s"), "--max-samples-per-shard", "4")
    assert result.exit_code == 0, result.output
    assert "36 samples in" in result.output
    assert "splits: paper, loso-1, loso-2, loso-3" in result.output
    assert "omitted loso-4: its val and test part(s) would be empty: no ok utterance of ses4F, ses4M" in result.output


def test_work_without_manifest_is_a_usage_error(tmp_path):
    (tmp_path / "work").mkdir()
    result = run("shard", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "s"))
    assert result.exit_code == 2
    assert "no manifest.parquet" in result.output
    assert not (tmp_path / "s").exists()


def copy_work(work: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(work, tmp_path / "work"))


def assert_untouched(out: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_missing_media_fails_before_writing_and_keeps_the_old_set(work, tmp_path):
    bad = copy_work(work, tmp_path)
    (bad / "frames" / "ses3M" / "Ses03M_script01_1_M005.npy").unlink()
    out = make_shards(work, tmp_path / "out")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run("shard", "--work", str(bad), "--out", str(out))
    assert result.exit_code == 1
    assert "Ses03M_script01_1_M005" in result.output and "missing file" in result.output
    assert_untouched(out, before)


def test_bad_media_met_mid_write_leaves_nothing_partial(work, tmp_path):
    bad = copy_work(work, tmp_path)
    # the last speaker's audio at the wrong rate: found only after other shards were written
    audio = bad / "audio" / "ses3M" / "Ses03M_script01_1_M005.flac"
    data, _ = sf.read(audio, dtype="int16")
    sf.write(audio, data, 44_100, subtype="PCM_16", format="FLAC")
    result = run("shard", "--work", str(bad), "--out", str(tmp_path / "new"))
    assert result.exit_code == 1
    assert "Ses03M_script01_1_M005" in result.output and "44100 Hz" in result.output
    assert list((tmp_path / "new").iterdir()) == []
    out = make_shards(work, tmp_path / "out", max_samples_per_shard=64)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert run("shard", "--work", str(bad), "--out", str(out), "--max-samples-per-shard", "4").exit_code == 1
    assert_untouched(out, before)


@pytest.mark.parametrize("frames, reason", [
    (face_frames(4, 0)[:, :64, :64], "expected uint8 (T, 96, 96, 3)"),
    (np.array(7, np.uint8), "expected uint8 (T, 96, 96, 3)"),
    (face_frames(3, 0), "3 frames, the manifest says 4"),
])
def test_bad_frames_are_named(work, tmp_path, frames, reason):
    bad = copy_work(work, tmp_path)
    np.save(bad / "frames" / "ses1F" / "Ses01F_impro01_F000.npy", frames)
    result = run("shard", "--work", str(bad), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "Ses01F_impro01_F000" in result.output and reason in result.output


def test_no_ok_utterance_is_an_error(tmp_path):
    work = make_work(tmp_path / "work", [FakeUtterance("Ses01F_impro01_F000", "ang", 4, 2000, status="failed")])
    result = run("shard", "--work", str(work), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "no utterance with status ok" in result.output
    assert not (tmp_path / "out").exists()


def test_a_split_with_an_empty_part_is_omitted_with_its_reason(tmp_path):
    utterances = [u for u in default_utterances(sessions=(1,)) if "script" in u.utterance_id]
    utterances += [FakeUtterance("Ses01F_impro01_F000", "ang", 4, 2000), FakeUtterance("Ses01F_impro01_M001", "sad", 4, 2000)]
    work = make_work(tmp_path / "work", utterances)
    result = run("shard", "--work", str(work), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert ("omitted paper: its val and test part(s) would be empty: WORK has 2 ok utterance(s) of group(s) impro"
            in result.output)
    assert "paper" not in json.loads((tmp_path / "out" / "splits.json").read_text())["splits"]


def test_manifest_rows_with_bad_values_are_named(work, tmp_path):
    import pyarrow as pa

    bad = copy_work(work, tmp_path)
    table = pq.read_table(bad / "manifest.parquet")
    rows = table.to_pylist()
    rows[3]["emotion"] = "fru"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), bad / "manifest.parquet")
    result = run("shard", "--work", str(bad), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert rows[3]["utterance_id"] in result.output and "'fru'" in result.output


def test_a_video_only_utterance_becomes_a_sample_without_flac_that_verifies(tmp_path):
    utterances = default_utterances(sessions=(1,)) + [FakeUtterance("Ses01F_impro01_F098", "sad", 5, 0, audio=False)]
    out = make_shards(make_work(tmp_path / "work", utterances), tmp_path / "shards")
    found = {}
    for entry in load_index(out).entries:
        for raw in tar_samples(out / entry.file):
            found[raw.key] = raw.members
    silent = found["Ses01F_impro01_F098"]
    assert list(silent) == ["json", "frames.jpg"]
    meta = json.loads(silent["json"])
    assert (meta["n_samples"], meta["n_frames"], meta["end"] - meta["start"]) == (0, 5, pytest.approx(0.2))
    assert run("verify", str(out)).exit_code == 0
