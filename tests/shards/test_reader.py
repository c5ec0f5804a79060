"""shardformat.reader and shardformat.sets on hostile input: headers that claim enormous sizes are refused
before memory is given, names outside the format before anything is opened."""

from __future__ import annotations

import io
import json
import resource
import tarfile

import numpy as np
import pytest
import soundfile as sf
from shardformat import encode_frames
from shardformat.reader import MEMBER_LIMITS, RawSample, ShardReadError, iter_tar, read_sample
from shardformat.sets import parse_index, parse_splits

from tests.emotrain.shard_factory import FakeUtterance, sample_members


def members(n_samples: int = 1600, n_frames: int = 3) -> dict[str, bytes]:
    return sample_members(FakeUtterance("Ses01F_impro01_F000", "ang", "F", n_samples, n_frames),
                          np.random.default_rng(0))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_flac_header_claiming_more_samples_than_the_json_is_refused_unread():
    flac = bytearray(members()["flac"])
    assert flac[:4] == b"fLaC"
    flac[21] |= 0x0F  # STREAMINFO's 36-bit total-samples field, set to 2^36 - 1
    flac[22:26] = b"\xff\xff\xff\xff"
    before = peak_rss_mb()
    with pytest.raises(ValueError, match="flac header says 68719476735 samples, json says n_samples=1600"):
        read_sample(RawSample("Ses01F_impro01_F000", "x.tar", members() | {"flac": bytes(flac)}))
    assert peak_rss_mb() - before < 100


def test_a_jpeg_header_claiming_an_enormous_stack_is_refused_before_its_pixels():
    jpeg = bytearray(encode_frames(np.zeros((3, 96, 96, 3), np.uint8)))
    sof = jpeg.index(b"\xff\xc0")  # baseline SOF0: length (2), precision (1), height (2), width (2)
    jpeg[sof + 5: sof + 7] = (65_000).to_bytes(2, "big")
    before = peak_rss_mb()
    with pytest.raises(ValueError, match="frames.jpg is a JPEG of 96x65000, expected a JPEG of 96x288 for n_frames=3"):
        read_sample(RawSample("Ses01F_impro01_F000", "x.tar", members() | {"frames.jpg": bytes(jpeg)}))
    assert peak_rss_mb() - before < 100


def test_a_tar_member_claiming_gigabytes_is_skipped_unread_and_named():
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for extension, blob in members().items():
            info = tarfile.TarInfo(f"Ses01F_impro01_F000.{extension}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with tarfile.open(fileobj=io.BytesIO(data.getvalue())) as tar:
        last = tar.getmembers()[-1]
    end = last.offset_data + -(-last.size // 512) * 512  # where the end-of-archive blocks begin
    # A second sample whose json header says 8 GB, followed by only a few bytes of it.
    header = tarfile.TarInfo("Ses01F_impro01_F001.json")
    header.size = 8 << 30
    hostile = data.getvalue()[:end] + header.tobuf() + b"{" * 512
    before = peak_rss_mb()
    samples = []
    with pytest.raises(ShardReadError, match="unreadable tar"):
        for sample in iter_tar(io.BytesIO(hostile), "x.tar"):
            samples.append(sample)
    assert [s.key for s in samples] == ["Ses01F_impro01_F000"]
    assert peak_rss_mb() - before < 100


def test_a_member_over_its_limit_or_outside_the_format_makes_the_sample_bad_not_the_shard():
    big = b"{" + b" " * MEMBER_LIMITS["json"] + b"}"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for key, extra in (("a", {"json": big}), ("b", {"txt": b"hi"}), ("c", {})):
            for extension, blob in (members() | extra).items():
                info = tarfile.TarInfo(f"{key}.{extension}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    a, b, c = iter_tar(io.BytesIO(data.getvalue()), "x.tar")
    with pytest.raises(ValueError, match=f"json is {len(big)} bytes, more than the 65536 the format allows"):
        read_sample(a)
    with pytest.raises(ValueError, match="txt is not a member of the format"):
        read_sample(b)
    with pytest.raises(ValueError, match="utterance_id 'Ses01F_impro01_F000' differs from the key"):
        read_sample(c)


@pytest.mark.parametrize("name", ["x.tar; touch /tmp/marker #", "../ses1F-impro-0000.tar", "/etc/passwd",
                                  "ses1F-impro-0000.tar\n", "ses1F-impro-0000.tar/..", 7])
def test_the_set_files_refuse_every_name_outside_the_format_naming_the_entry(name):
    splits = {"format_version": 2, "classes": {"emotion": ["ang", "hap"]},
              "splits": {"s-1": {"train": {"shards": ["ses1F-impro-0000.tar", name], "samples": 1}}}}
    with pytest.raises(ValueError, match=r"split 's-1' part 'train' shards\[1\]: .* is not a shard file name"):
        parse_splits(json.dumps(splits))
    index = {"format_version": 2, "classes": {"emotion": ["ang", "hap"]},
             "shards": [{"file": name, "samples": 1, "bytes": 1, "sha256": ""}]}
    with pytest.raises(ValueError, match=r"shards\[0\]: .* is not a shard file name"):
        parse_index(json.dumps(index))


@pytest.mark.parametrize("doc, reason", [
    ("[]", "not a JSON object"),
    ({"format_version": True, "splits": {}}, "format_version True is not supported"),
    ({"format_version": 2, "classes": {"emotion": ["ang", "ang"]}, "splits": {}}, "lists a class twice"),
    ({"format_version": 1, "splits": {"s": {"train": {"shards": [], "samples": -1}}}}, "is not a non-negative"),
    ({"format_version": 1, "splits": {"s": {"train": {"shards": "ses1F-impro-0000.tar"}}}}, "list of shards"),
])
def test_malformed_splits_are_one_clear_error(doc, reason):
    with pytest.raises(ValueError, match=reason):
        parse_splits(doc if isinstance(doc, str) else json.dumps(doc))


def test_a_stereo_or_8_bit_flac_is_refused_by_its_header():
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((1600, 2), np.int16), 16_000, format="FLAC", subtype="PCM_16")
    with pytest.raises(ValueError, match="flac is FLAC/PCM_16/2/16000"):
        read_sample(RawSample("Ses01F_impro01_F000", "x.tar", members() | {"flac": buffer.getvalue()}))
