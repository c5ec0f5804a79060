"""The shards read without emoprep: plain tarfile, webdataset, Hugging Face datasets.

Only the fixture that writes the shards uses project code; every reader below decodes by hand
from shards/README.md, as a third party would.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image

from tests.emoprep.work_factory import make_shards, make_work


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return make_work(tmp_path_factory.mktemp("work"))


@pytest.fixture(scope="module")
def shards(work, tmp_path_factory) -> Path:
    return make_shards(work, tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def expected(work) -> dict[str, dict]:
    """Per utterance id: the manifest row plus its audio and frames as WORK holds them."""
    rows = {}
    for row in pq.read_table(work / "manifest.parquet").to_pylist():
        row["audio"] = sf.read(work / row["audio_path"], dtype="int16")[0]
        row["frames"] = np.load(work / row["frames_path"])
        rows[row["utterance_id"]] = row
    return rows


def urls(shards: Path) -> list[str]:
    return [str(shards / entry["file"]) for entry in json.loads((shards / "index.json").read_text())["shards"]]


def check(key: str, meta: dict, flac: bytes, jpeg: Image.Image, expected: dict[str, dict]) -> None:
    row = expected[key]
    audio, rate = sf.read(io.BytesIO(flac), dtype="int16")
    assert rate == 16_000 and audio.ndim == 1
    np.testing.assert_array_equal(audio, row["audio"])
    assert jpeg.mode == "RGB" and jpeg.size == (96, 96 * meta["n_frames"])
    frames = np.asarray(jpeg).reshape(meta["n_frames"], 96, 96, 3)
    error = np.mean((frames.astype(np.float64) - row["frames"]) ** 2)
    assert 10 * np.log10(255 ** 2 / error) > 38
    assert (meta["utterance_id"], meta["emotion"], meta["gender"], meta["n_samples"]) == \
           (key, row["emotion"], row["gender"], len(row["audio"]))


def test_plain_tarfile(shards, expected):
    seen = []
    for url in urls(shards):
        with tarfile.open(url) as tar:
            members = {info.name: tar.extractfile(info).read() for info in tar}
        for name in members:
            if name.endswith(".json"):
                key = name[:-5]
                check(key, json.loads(members[name]), members[f"{key}.flac"],
                      Image.open(io.BytesIO(members[f"{key}.frames.jpg"])), expected)
                seen.append(key)
    assert sorted(seen) == sorted(expected)


def test_webdataset_without_project_code(shards, expected):
    import webdataset as wds

    seen = []
    for sample in wds.WebDataset(urls(shards), shardshuffle=False):
        assert {k for k in sample if not k.startswith("__")} == {"json", "flac", "frames.jpg"}
        check(sample["__key__"], json.loads(sample["json"]), sample["flac"],
              Image.open(io.BytesIO(sample["frames.jpg"])), expected)
        seen.append(sample["__key__"])
    assert sorted(seen) == sorted(expected)


def test_hugging_face_datasets_offline(shards, expected, tmp_path, monkeypatch):
    for variable in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(variable, "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets")
    # datasets' Audio feature needs torchcodec to decode: take the FLAC as bytes and decode it by hand.
    features = datasets.Features({
        "__key__": datasets.Value("string"), "__url__": datasets.Value("string"), "json": datasets.Json(),
        "flac": datasets.Value("binary"), "frames.jpg": datasets.Image(),
    })
    loaded = datasets.load_dataset("webdataset", data_files={"train": urls(shards)}, split="train",
                                   features=features, cache_dir=str(tmp_path / "cache"))
    assert sorted(loaded["__key__"]) == sorted(expected)
    for row in loaded:
        check(row["__key__"], row["json"], row["flac"], row["frames.jpg"], expected)
