"""Seeded corruptions of a small shard set: the loader never raises an uncaught exception and never hangs,
every sample it leaves out is counted, and `emoprep verify` flags every corrupted shard."""

from __future__ import annotations

import io
import random
import signal
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from emoprep.verify import verify_shards
from emotrain.data import ShardsError, eval_loader, read_part
from tests.emotrain.shard_factory import make_shards

CASES = 240
SECONDS_PER_CASE = 20  # a hang is a failure, not a stuck suite


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def tar_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, blob in members:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return out.getvalue()


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(1, len(data) - 1)]


def swap_members(data: bytes, rng: random.Random) -> bytes:
    members = members_of(data)
    i, j = rng.sample(range(len(members)), 2)
    (a, x), (b, y) = members[i], members[j]
    members[i], members[j] = (a, y), (b, x)  # the names stay, the bytes trade places
    return tar_of(members)


def duplicate_member(data: bytes, rng: random.Random) -> bytes:
    members = members_of(data)
    i = rng.randrange(len(members))
    return tar_of(members[: i + 1] + [members[i]] + members[i + 1:])


def rename_across_samples(data: bytes, rng: random.Random) -> bytes:
    members = members_of(data)
    keys = sorted({name.partition(".")[0] for name, _ in members})
    i = rng.randrange(len(members))
    name, blob = members[i]
    key, _, extension = name.partition(".")
    other = rng.choice([k for k in keys if k != key])
    members[i] = (f"{other}.{extension}", blob)
    return tar_of(members)


def insert_garbage(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.randint(1, 2048)) + data[at:]


CORRUPTIONS: list[Callable[[bytes, random.Random], bytes]] = [
    flip_bytes, truncate, swap_members, duplicate_member, rename_across_samples, insert_garbage]


class Hang(Exception):
    pass


def on_alarm(signum, frame):
    raise Hang(f"no answer in {SECONDS_PER_CASE} s")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return make_shards(tmp_path_factory.mktemp("fuzz"), {"train": [3, 2], "val": [3], "test": [2]},
                       seconds=(0.1, 0.2)).root


def test_seeded_corruptions_are_skipped_counted_and_flagged(pristine):
    originals = {path.name: path.read_bytes() for path in pristine.glob("*.tar")}
    keys = {}  # part -> every key the clean part yields
    for part in ("train", "val", "test"):
        keys[part] = [k for b in eval_loader(read_part(pristine, "paper", part), modality="av", batch_size=4)
                      for k in b.keys]
    shard_part = {name: part for part in keys for name in read_part(pristine, "paper", part).shards}
    previous = signal.signal(signal.SIGALRM, on_alarm)
    rng = random.Random(20261202)
    outcomes = {"all read": 0, "some skipped": 0}
    try:
        for case in range(CASES):
            name = rng.choice(sorted(originals))
            corruption = CORRUPTIONS[case % len(CORRUPTIONS)]
            damaged = corruption(originals[name], rng)
            if damaged == originals[name]:
                damaged = flip_bytes(damaged, rng)  # a swap of identical bytes changes nothing
            (pristine / name).write_bytes(damaged)
            part = shard_part[str(pristine / name)]
            where = f"case {case}: {corruption.__name__} of {name}"
            signal.alarm(SECONDS_PER_CASE)
            try:
                batches = list(eval_loader(read_part(pristine, "paper", part), modality="av", batch_size=4))
                problems = verify_shards(pristine).problems
            finally:
                signal.alarm(0)
            read = [k for b in batches for k in b.keys]
            skipped = [s for b in batches for s in b.skipped]
            assert len(read) == len(set(read)) and set(read) <= set(keys[part]), where
            assert all(s.reason and s.shard for s in skipped), where
            if len(read) < len(keys[part]):
                assert skipped, f"{where}: {len(keys[part]) - len(read)} sample(s) left out without a word"
            outcomes["some skipped" if skipped else "all read"] += 1
            assert any(p.shard == name for p in problems), f"{where}: verify did not flag it: {problems}"
            (pristine / name).write_bytes(originals[name])
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert outcomes["some skipped"] > CASES / 2, outcomes  # the corruptions bite, mostly


@pytest.mark.parametrize("file", ["splits.json", "index.json"])
def test_corrupt_set_files_are_a_clean_error_or_read_as_before(pristine, tmp_path, file):
    rng = random.Random(file)
    original = (pristine / file).read_bytes()
    for case in range(30):
        (pristine / file).write_bytes(flip_bytes(original, rng) if case % 2 else truncate(original, rng))
        try:
            part = read_part(pristine, "paper", "val")
            list(eval_loader(part, modality="a", batch_size=4))
        except ShardsError as exn:
            assert file in str(exn)
        finally:
            (pristine / file).write_bytes(original)
