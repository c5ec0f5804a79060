"""emoprep.verify and `emoprep verify`: good shards pass; damage is found and named by shard and sample."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep.cli import main
from emoprep.shard import write_tar
from emoprep.verify import load_index, verify_shards
from tests.shards.reading import tar_samples
from tests.emoprep.work_factory import make_shards, make_work


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    work = make_work(tmp_path_factory.mktemp("work"))
    return make_shards(work, tmp_path_factory.mktemp("shards"))


@pytest.fixture
def shards(good, tmp_path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "shards"))


def verify(shards: Path):
    return CliRunner().invoke(main, ["verify", str(shards)])


def first_shard(shards: Path) -> tuple[str, str]:
    """(file, key of its first sample)."""
    name = load_index(shards).entries[0].file
    return name, tar_samples(shards / name)[0].key


def rewrite_member(shards: Path, name: str, key: str, extension: str, data: bytes) -> None:
    """Replace one member and re-index the shard, so only decoding can catch the damage."""
    members = [(f"{raw.key}.{ext}", data if (raw.key, ext) == (key, extension) else blob)
               for raw in tar_samples(shards / name) for ext, blob in raw.members.items()]
    write_tar(shards / name, members)
    index = json.loads((shards / "index.json").read_text())
    for entry in index["shards"]:
        if entry["file"] == name:
            content = (shards / name).read_bytes()
            entry["bytes"], entry["sha256"] = len(content), hashlib.sha256(content).hexdigest()
    (shards / "index.json").write_text(json.dumps(index))


def test_good_shards_pass_with_a_summary(good):
    report = verify_shards(good)
    assert report.problems == ()
    assert (report.shards, report.samples) == (len(load_index(good).entries), 36)
    assert report.bytes == sum(p.stat().st_size for p in good.glob("*.tar"))
    result = verify(good)
    assert result.exit_code == 0, result.output
    assert f"{report.shards} shards, 36 samples" in result.output and result.output.rstrip().endswith("OK")


def test_one_flipped_byte_names_the_shard(shards):
    name, _ = first_shard(shards)
    data = bytearray((shards / name).read_bytes())
    data[len(data) // 3] ^= 0x01
    (shards / name).write_bytes(data)
    result = verify(shards)
    assert result.exit_code == 1
    assert f"{name}: sha256 differs from index.json" in result.output


@pytest.mark.parametrize("where, reason", [
    ("flac data", "unreadable tar (unexpected end of data)"),
    ("flac header", "members json; with n_samples"),  # the tar ends cleanly after the json member
])
def test_a_truncated_tar_names_the_shard_and_sample(shards, where, reason):
    name, key = first_shard(shards)
    with tarfile.open(shards / name) as tar:
        flac = tar.getmember(f"{key}.flac")
    cut = flac.offset_data + 200 if where == "flac data" else flac.offset + 100
    data = (shards / name).read_bytes()
    (shards / name).write_bytes(data[:cut])
    problems = [str(p) for p in verify_shards(shards).problems]
    assert f"{name}: {key}: {reason}" in "\n".join(problems), problems
    assert any(p.startswith(f"{name}: {cut} bytes, index.json says") for p in problems)
    assert verify(shards).exit_code == 1


@pytest.mark.parametrize("extension, make, reason", [
    ("frames.jpg", lambda members: b"\xff\xd8 not a jpeg", "frames.jpg does not decode"),
    ("flac", lambda members: members["flac"][:60], "flac"),
    ("json", lambda members: b"{not json", "json member: Expecting property name"),
    ("json", lambda members: json.dumps({**json.loads(members["json"]), "format_version": 3}).encode(),
     "format_version 3 is not supported"),
    ("json", lambda members: json.dumps({**json.loads(members["json"]), "n_frames": 99}).encode(),
     "expected a JPEG of 96x9504 for n_frames=99"),
    ("flac", lambda members: stereo_flac(), "FLAC/PCM_16/2/16000"),
])
def test_an_undecodable_member_names_shard_and_sample(shards, extension, make, reason):
    name, key = first_shard(shards)
    members = tar_samples(shards / name)[0].members
    rewrite_member(shards, name, key, extension, make(members))
    problems = verify_shards(shards).problems
    assert [(p.shard, p.sample) for p in problems] == [(name, key)], problems
    assert reason in problems[0].reason
    result = verify(shards)
    assert result.exit_code == 1 and f"{name}: {key}:" in result.output


def stereo_flac() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((1000, 2), np.int16), 16_000, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def test_splits_naming_a_missing_shard_is_found(shards):
    splits = json.loads((shards / "splits.json").read_text())
    splits["splits"]["paper"]["test"]["shards"].append("ses9F-impro-test-0000.tar")
    (shards / "splits.json").write_text(json.dumps(splits))
    problems = [str(p) for p in verify_shards(shards).problems]
    assert problems == ["splits.json: split paper, part test: shard ses9F-impro-test-0000.tar is not in index.json"]


def test_a_missing_or_unlisted_shard_is_found(shards):
    name, _ = first_shard(shards)
    (shards / name).rename(shards / "ses9M-script-0000.tar")
    problems = [str(p) for p in verify_shards(shards).problems]
    assert f"{name}: missing" in problems
    assert "ses9M-script-0000.tar: a shard file that index.json does not list" in problems


def test_miscounted_splits_are_found(shards):
    splits = json.loads((shards / "splits.json").read_text())
    splits["splits"]["loso-2"]["val"]["counts"]["ang"]["F"] += 1
    (shards / "splits.json").write_text(json.dumps(splits))
    problems = [str(p) for p in verify_shards(shards).problems]
    assert len(problems) == 1 and problems[0].startswith("splits.json: split loso-2, part val: declares")


def test_a_folder_without_index_fails(tmp_path):
    result = verify(tmp_path)
    assert result.exit_code == 1
    assert "index.json: missing" in result.output
