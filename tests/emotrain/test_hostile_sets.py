"""A shard set from someone else: the names it lists are data, never a path out of it or a shell command."""

from __future__ import annotations

import json
import shutil

import pytest

from emotrain.data import ShardsError, eval_loader, read_part
from emotrain.predict import select_shards
from tests.emotrain.shard_factory import make_shards
from tests.emotrain.test_http_shards import serve  # noqa: F401 (the fixture)

HOSTILE_NAMES = ["x.tar; touch {marker} #", "../outside-all-0000.tar", "/etc/passwd", "$(touch {marker}).tar",
                 "ses1F-impro-0000.tar\n", "ses1F-impro-0000.tar/../../x"]


@pytest.fixture
def hostile(tmp_path):
    """A good set, an outside file a '../' name would reach, and a marker a command would create."""
    fake = make_shards(tmp_path / "set", {"train": [2], "val": [2], "test": [2]}, seconds=(0.1, 0.2))
    shutil.copy(fake.root / fake.shards["train"][0], tmp_path / "outside-all-0000.tar")
    return fake, tmp_path / "marker"


def list_in_splits(root, name: str) -> None:
    doc = json.loads((root / "splits.json").read_text())
    doc["splits"]["paper"]["train"]["shards"].append(name)
    (root / "splits.json").write_text(json.dumps(doc))


def list_in_index(root, name: str) -> None:
    doc = json.loads((root / "index.json").read_text())
    doc["shards"].append({"file": name, "samples": 1, "bytes": 1, "sha256": ""})
    (root / "index.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("template", HOSTILE_NAMES)
@pytest.mark.parametrize("where", ["folder", "pipe", "http"])
def test_a_name_outside_the_format_in_splits_json_is_refused_before_anything_opens(hostile, serve, template,  # noqa: F811
                                                                                   where):
    fake, marker = hostile
    name = template.format(marker=marker)
    list_in_splits(fake.root, name)
    source = {"folder": str(fake.root), "pipe": f"pipe:cat {fake.root}/", "http": None}[where]
    if where == "http":
        source = serve(fake.root).url
    with pytest.raises(ShardsError, match=r"splits.json: split 'paper' part 'train' shards\[1\]: .* is not a shard "
                                          "file name of the format"):
        read_part(source, "paper", "train")
    assert not marker.exists()


@pytest.mark.parametrize("template", HOSTILE_NAMES)
def test_a_name_outside_the_format_in_index_json_is_refused_by_training_and_prediction(hostile, template):
    fake, marker = hostile
    list_in_index(fake.root, template.format(marker=marker))
    for read in (lambda: read_part(f"pipe:cat {fake.root}/", "paper", "train"),
                 lambda: select_shards(f"pipe:cat {fake.root}/")):
        with pytest.raises(ShardsError, match=r"index.json: shards\[3\]: .* is not a shard file name of the format"):
            read()
    assert not marker.exists()


def test_a_pipe_source_still_reads_a_good_set_and_quotes_what_it_appends(hostile):
    fake, _ = hostile
    part = read_part(f"pipe:cat {fake.root}/", "paper", "val")
    assert [batch.size for batch in eval_loader(part, modality="a", batch_size=8)] == [2]
