"""emotrain.data: splits.json, decoding, collate, exact-once evaluation and equal training epochs."""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shardformat.reader import RawSample, decode_frames

from emotrain.data import (
    Example,
    ResampleShards,
    SampleError,
    ShardsError,
    batches_per_rank,
    collate,
    decode_sample,
    eval_loader,
    read_part,
    train_loader,
)
from tests.emotrain.shard_factory import (
    FakeUtterance,
    encode_flac,
    encode_frames,
    frames_for,
    make_shards,
    rewrite_member,
    utterance_json,
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """5 train shards of unequal sizes (odd, for splitting), 3 val shards."""
    return make_shards(tmp_path_factory.mktemp("shards"), {"train": [7, 3, 5, 2, 4], "val": [5, 4, 3]},
                       seconds=(0.2, 0.4))


def keys_of(loader) -> list[str]:
    return [key for batch in loader for key in batch.keys]


# --- splits.json --------------------------------------------------------------------------------


def test_read_part_gives_paths_and_count(shards):
    part = read_part(shards.root, "paper", "val")
    assert part.samples == 12
    assert [Path(p).name for p in part.shards] == shards.shards["val"]


@pytest.mark.parametrize("split, part, message", [
    ("loso-9", "train", "no split 'loso-9'; available: paper"),
    ("paper", "test", "part 'test' is missing; parts with samples: train, val"),
])
def test_read_part_names_what_exists(shards, split, part, message):
    with pytest.raises(ShardsError, match=message):
        read_part(shards.root, split, part)


def test_read_part_refuses_empty_part_and_unknown_version(tmp_path, shards):
    doc = json.loads((shards.root / "splits.json").read_text())
    doc["splits"]["paper"]["test"] = {"shards": [], "samples": 0, "counts": {}}
    (tmp_path / "splits.json").write_text(json.dumps(doc))
    with pytest.raises(ShardsError, match="part 'test' is empty"):
        read_part(tmp_path, "paper", "test")
    with pytest.raises(ShardsError, match="shard file.* missing"):
        read_part(tmp_path, "paper", "train")  # the tars are not in tmp_path
    doc["format_version"] = 3
    (tmp_path / "splits.json").write_text(json.dumps(doc))
    with pytest.raises(ShardsError, match="format_version 3 is not supported"):
        read_part(tmp_path, "paper", "train")
    with pytest.raises(ShardsError, match="not found"):
        read_part(tmp_path / "nowhere", "paper", "train")


# --- several shard sets as one part -------------------------------------------------------------


def test_sources_mix_into_one_part_with_their_weights(shards, tmp_path):
    other = make_shards(tmp_path / "other", {"train": [6, 6]}, seconds=(0.2, 0.3), seed=1)
    part = read_part([str(shards.root), f"{other.root}@0.25"], "paper", "train")
    assert part.samples == 21 + 12 and len(part.shards) == 5 + 2
    assert part.weights == {str(other.root / name): 0.25 for name in other.shards["train"]}
    # A source's share of the samples is weight x samples / sum: 0.25 x 12 / (21 + 0.25 x 12) = 1/8.
    draws = ResampleShards(part.shards, tuple(part.weights.get(u, 1.0) for u in part.shards), seed=0, rank=0)()
    urls = [next(draws)["url"] for _ in range(7000)]
    drawn_other = sum(part.shard_samples[u] for u in urls if u in part.weights) / sum(map(part.shard_samples.get, urls))
    assert drawn_other == pytest.approx(1 / 8, abs=0.02)
    keys = keys_of(train_loader(part, modality="a", batch_size=4, epoch=1, seed=0, shuffle_buffer=8))
    assert len(keys) == 4 * batches_per_rank(part, 4, 1)
    assert set(keys) <= set(shards.keys["train"]) | set(other.keys["train"])


def test_sources_must_agree_on_the_classes_and_not_repeat(shards, tmp_path):
    other = make_shards(tmp_path / "other", {"train": [2]}, seconds=(0.2, 0.3))
    doc = json.loads((other.root / "splits.json").read_text())
    doc |= {"format_version": 2, "classes": {"emotion": ["ang", "hap", "neu", "sad", "fru"]}}
    (other.root / "splits.json").write_text(json.dumps(doc))
    with pytest.raises(ShardsError, match=f"disagree on the emotion classes: {shards.root} has ang, hap, neu, sad; "
                                          f"{other.root} has ang, hap, neu, sad, fru"):
        read_part([shards.root, other.root], "paper", "train")
    with pytest.raises(ShardsError, match="a shard set is given twice"):
        read_part([shards.root, f"{shards.root}@2"], "paper", "train")


# --- decoding and collate -----------------------------------------------------------------------


def raw_sample(utt: FakeUtterance, **override: bytes) -> RawSample:
    rng = np.random.default_rng(0)
    from tests.emotrain.shard_factory import audio_for

    members = {"json": json.dumps(utterance_json(utt)).encode(), "flac": encode_flac(audio_for(utt, rng)),
               "frames.jpg": encode_frames(frames_for(utt, rng))}
    return RawSample(utt.key, "x.tar", members | override)


@pytest.mark.parametrize("n_frames", [3, 4, 6])  # fewer frames than steps, equal, more
def test_decode_aligns_frames_and_normalises_audio(n_frames):
    utt = FakeUtterance("Ses01F_impro01_F000", "sad", "F", n_samples=4 * 640 - 100, n_frames=n_frames)
    example = decode_sample(raw_sample(utt), "av")
    assert (example.key, example.emotion, example.gender, example.steps) == (utt.key, 3, 0, 4)
    assert example.audio.shape == (utt.n_samples,) and example.audio.dtype == np.float32
    assert abs(example.audio.mean()) < 1e-4
    assert example.audio.std() == pytest.approx(1.0, abs=1e-4)
    assert example.frames.shape == (4, 3, 96, 96) and example.frames.dtype == np.uint8
    if n_frames < 4:  # the last frame repeated
        assert np.array_equal(example.frames[n_frames - 1], example.frames[-1])
    # the top half is the emotion colour (sad: blue), channel order RGB
    r, g, b = example.frames[0, :, :40].mean(axis=(1, 2)).tolist()
    assert b > 180 and r < 80


def test_single_modality_skips_the_other_member():
    utt = FakeUtterance("Ses01M_impro01_M000", "ang", "M", n_samples=1000, n_frames=2)
    audio_only = decode_sample(raw_sample(utt, **{"frames.jpg": b"not a jpeg"}), "a")
    assert audio_only.frames is None and audio_only.audio.shape == (1000,) and audio_only.gender == 1
    video_only = decode_sample(raw_sample(utt, flac=b"not flac"), "v")
    assert video_only.audio is None and video_only.frames.shape == (2, 3, 96, 96)


@pytest.mark.parametrize("override, reason", [
    ({"json": b"{"}, "Expecting property name"),
    ({"flac": b"garbage"}, "Format not recognised"),
    ({"frames.jpg": b"garbage"}, "cannot identify image file"),
    ({"frames.jpg": encode_frames(np.zeros((3, 96, 96, 3), np.uint8))}, "expected a JPEG of 96x192 for n_frames=2"),
])
def test_decode_rejects_bad_members(override, reason):
    utt = FakeUtterance("Ses01M_impro01_M000", "ang", "M", n_samples=1000, n_frames=2)
    with pytest.raises(Exception, match=reason):
        decode_sample(raw_sample(utt, **override), "av")


def test_decode_rejects_unknown_sample_version_and_labels():
    utt = FakeUtterance("Ses01M_impro01_M000", "ang", "M", n_samples=1000, n_frames=2)
    newer = json.dumps(utterance_json(utt, format_version=7)).encode()
    with pytest.raises(ValueError, match="format_version 7 is not supported"):
        decode_sample(raw_sample(utt, json=newer), "av")
    unknown = json.dumps(utterance_json(utt) | {"emotion": "fru"}).encode()
    with pytest.raises(ValueError, match="emotion 'fru' is not one of ang, hap, neu, sad"):
        decode_sample(raw_sample(utt, json=unknown), "av")


def test_collate_pads_to_the_longest_in_steps():
    def example(key: str, steps: int, n_audio: int) -> Example:
        return Example(key, np.ones(n_audio, np.float32), np.full((steps, 3, 96, 96), 7, np.uint8),
                       steps, emotion=steps % 4, gender=steps % 2)

    batch = collate([example("a", 2, 1200), example("b", 5, 3000)])
    assert batch.audio.shape == (2, 5 * 640) and batch.frames.shape == (2, 5, 3, 96, 96)
    assert batch.audio.dtype == torch.float32 and batch.frames.dtype == torch.uint8
    assert batch.lengths.tolist() == [2, 5] and batch.keys == ("a", "b")
    assert batch.audio[0, :1200].eq(1).all() and batch.audio[0, 1200:].eq(0).all()
    assert batch.frames[0, :2].eq(7).all() and batch.frames[0, 2:].eq(0).all()
    assert batch.emotion.tolist() == [2, 1] and batch.gender.tolist() == [0, 1]


@pytest.mark.parametrize("n_frames", [3, 4, 6])
def test_frames_decoded_on_the_device_match_the_loader_decoding(n_frames):
    # The CPU twin of nvJPEG's path: the same batch decode torchvision runs on CUDA, here with device="cpu".
    utts = [FakeUtterance("Ses01F_impro01_F000", "sad", "F", n_samples=4 * 640 - 100, n_frames=n_frames),
            FakeUtterance("Ses01M_impro01_M001", "hap", "M", n_samples=7 * 640, n_frames=7)]
    raws = [raw_sample(u) for u in utts]
    in_loader = collate([decode_sample(r, "av") for r in raws])
    pending = collate([decode_sample(r, "av", frames_on="device") for r in raws])
    assert pending.frames is None and pending.jpeg_frames == (n_frames, 7)
    assert pending.jpegs.numel() == sum(pending.jpeg_sizes) == sum(len(r.members["frames.jpg"]) for r in raws)
    on_device = pending.pin_memory().to(torch.device("cpu")) if torch.cuda.is_available() else pending.to("cpu")
    assert on_device.jpegs is None and on_device.frames.shape == in_loader.frames.shape == (2, 7, 3, 96, 96)
    difference = (on_device.frames.int() - in_loader.frames.int()).abs()
    assert difference.max() <= 2  # JPEG decoders may round differently; both are libjpeg-turbo here
    assert torch.equal(on_device.lengths, in_loader.lengths) and torch.equal(on_device.audio, in_loader.audio)
    assert not on_device.frames[0, 4:].any()  # padding past the first sample's 4 steps stays zero


def test_the_frame_decoder_gives_the_written_pixels_and_checks_the_size():
    utt = FakeUtterance("Ses01F_impro01_F000", "sad", "F", n_samples=5 * 640, n_frames=5)
    jpeg = raw_sample(utt).members["frames.jpg"]
    frames = decode_frames(jpeg, 5)
    assert frames.shape == (5, 96, 96, 3) and frames.dtype == np.uint8
    stacked = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))  # frame i = rows 96 i .. 96 i + 95
    assert np.array_equal(frames[2], stacked[2 * 96: 3 * 96])
    with pytest.raises(ValueError, match="expected a JPEG of 96x576 for n_frames=6"):
        decode_frames(jpeg, 6)


def test_device_decoding_still_checks_the_jpeg_header_in_the_loader():
    utt = FakeUtterance("Ses01F_impro01_F000", "sad", "F", n_samples=4 * 640, n_frames=4)
    wrong = raw_sample(utt, **{"frames.jpg": encode_frames(frames_for(FakeUtterance("k", "sad", "F", 640, 3),
                                                                      np.random.default_rng(0)))})
    with pytest.raises(ValueError, match="expected a JPEG of 96x384 for n_frames=4"):
        decode_sample(wrong, "av", frames_on="device")


# --- loaders ------------------------------------------------------------------------------------


@pytest.mark.parametrize("world_size, workers", [(1, 0), (2, 0), (3, 0), (3, 2)])
def test_evaluation_sees_every_sample_exactly_once(shards, world_size, workers):
    part = read_part(shards.root, "paper", "train")  # 5 shards, 21 samples
    seen = Counter()
    for rank in range(world_size):
        seen.update(keys_of(eval_loader(part, modality="a", batch_size=4, rank=rank, world_size=world_size,
                                        workers=workers)))
    assert sorted(seen) == sorted(shards.keys["train"])
    assert set(seen.values()) == {1}


@pytest.mark.parametrize("world_size, workers", [(2, 0), (3, 2)])
def test_training_epochs_are_equal_on_every_rank(shards, world_size, workers):
    part = read_part(shards.root, "paper", "train")
    expected = batches_per_rank(part, 4, world_size)
    assert expected == -(-21 // (4 * world_size))
    for rank in range(world_size):
        batches = list(train_loader(part, modality="a", batch_size=4, epoch=1, seed=0, rank=rank,
                                    world_size=world_size, workers=workers, shuffle_buffer=8))
        assert len(batches) == expected
        assert all(b.size == 4 for b in batches)


def test_training_order_follows_seed_and_epoch(shards):
    part = read_part(shards.root, "paper", "train")
    order = lambda epoch: keys_of(train_loader(part, modality="a", batch_size=3, epoch=epoch, seed=5,  # noqa: E731
                                               shuffle_buffer=8))
    assert order(1) == order(1)
    assert order(1) != order(2)


# --- bad samples ----------------------------------------------------------------------------------


@pytest.fixture()
def corrupt(tmp_path):
    fake = make_shards(tmp_path, {"val": [3, 3]}, seconds=(0.2, 0.3))
    shard = tmp_path / fake.shards["val"][1]
    bad_key = fake.keys["val"][4]
    rewrite_member(shard, bad_key, "json", b"{not json")
    return fake, shard, bad_key


def test_corrupt_sample_is_named_skipped_and_counted(corrupt):
    fake, shard, bad_key = corrupt
    batches = list(eval_loader(read_part(fake.root, "paper", "val"), modality="av", batch_size=2))
    assert sorted(keys_of(batches)) == sorted(k for k in fake.keys["val"] if k != bad_key)
    skipped = [s for b in batches for s in b.skipped]
    assert len(skipped) == 1
    assert str(shard) in str(skipped[0]) and bad_key in str(skipped[0])
    assert "json member: Expecting property name" in str(skipped[0])


def test_strict_stops_at_the_corrupt_sample(corrupt):
    fake, shard, bad_key = corrupt
    loader = eval_loader(read_part(fake.root, "paper", "val"), modality="av", batch_size=2, on_error="raise")
    with pytest.raises(SampleError, match=f"{shard}: {bad_key}: json member: Expecting property name"):
        list(loader)


def test_truncated_tar_names_the_shard(tmp_path):
    fake = make_shards(tmp_path, {"val": [4]}, seconds=(0.2, 0.3))
    shard = tmp_path / fake.shards["val"][0]
    with tarfile.open(shard) as tar:
        flac = tar.getmembers()[4]  # the second sample's .flac
    shard.write_bytes(shard.read_bytes()[: flac.offset_data + flac.size // 2])
    part = read_part(fake.root, "paper", "val")
    with pytest.raises(SampleError, match=f"{shard}: -: unreadable tar after sample {fake.keys['val'][0]}"):
        list(eval_loader(part, modality="av", batch_size=2, on_error="raise"))
    batches = list(eval_loader(part, modality="av", batch_size=2))
    assert keys_of(batches) == fake.keys["val"][:1]
    assert [str(s) for b in batches for s in b.skipped] == [
        f"{shard}: -: unreadable tar after sample {fake.keys['val'][0]}: unexpected end of data; "
        "the rest of the shard is skipped"]


def test_tar_cut_between_samples_is_caught_by_the_index_count(tmp_path):
    fake = make_shards(tmp_path, {"val": [4]}, seconds=(0.2, 0.3))
    shard = tmp_path / fake.shards["val"][0]
    with tarfile.open(shard) as tar:
        third_json = tar.getmembers()[6]
    shard.write_bytes(shard.read_bytes()[: third_json.offset])  # two whole samples, no end-of-archive blocks
    batches = list(eval_loader(read_part(fake.root, "paper", "val"), modality="a", batch_size=8))
    assert keys_of(batches) == fake.keys["val"][:2]
    assert [str(s) for b in batches for s in b.skipped] == [
        f"{shard}: -: the tar ends after 2 of the 4 samples index.json lists (truncated?)"]


def test_a_modality_the_set_does_not_hold_is_a_one_line_error_naming_what_it_holds(tmp_path):
    from emotrain.data import Part, check_modality
    from tests.emotrain.test_predict import v2_sample, write_unlabelled_set

    speech = write_unlabelled_set(tmp_path, [v2_sample(f"w{i}", "a.wav", 0.0, 0.3, video=False) for i in range(2)])
    part = Part(split="fold-1", name="train", shards=(str(speech / "clips-all-0000.tar"),), samples=2,
                shard_samples={})
    check_modality(part, "a")
    for modality in ("av", "v"):
        with pytest.raises(ShardsError, match=r"split 'fold-1' part 'train' holds audio only \(its first sample w0 "
                                              rf"has no video\); --modality {modality} needs .*: use --modality a"):
            check_modality(part, modality)


def test_a_version_1_set_still_reads_with_the_shared_four(tmp_path):
    old = make_shards(tmp_path, {"val": [3, 2]}, seconds=(0.2, 0.3), format_version=1)
    part = read_part(old.root, "paper", "val")
    assert part.emotions == ("ang", "hap", "neu", "sad")
    assert sorted(keys_of(eval_loader(part, modality="av", batch_size=2))) == sorted(old.keys["val"])
