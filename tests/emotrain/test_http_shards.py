"""Shards from a real HTTP server on 127.0.0.1: the same results as from the folder, bounded failures.

The server is the standard library's (http.server in a thread), serving a shard folder; its
handler can drop the connection in the middle of a shard, or stop the whole server after a
number of shard requests (a server that dies mid-epoch).
"""

from __future__ import annotations

import functools
import os
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from emotrain.cli import main
from emotrain.data import ShardsError, eval_loader, read_part
from emotrain.sources import FetchPolicy, command_for, parse_source
from tests.emotrain.shard_factory import make_shards

FAST = ["--model", "small", "--workers", "0", "--device", "cpu", "--batch-size", "4"]
QUICK_FAILURE = FetchPolicy(timeout=2.0, retries=1, backoff=0.1)
TIMING_KEYS = {"samples_per_s"}


class ShardServer:
    """http.server on a free port of 127.0.0.1 serving `root`.

    cut_first: the first response of each shard sends half its bytes, then closes the connection.
    die_after: after this many shard requests, the next one stops the server (no reply, then refused).
    """

    def __init__(self, root: Path, *, cut_first: bool = False, die_after: int | None = None) -> None:
        self.tar_requests: list[str] = []
        self.cut: set[str] = set()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.endswith(".tar"):
                    server.tar_requests.append(self.path)
                    if die_after is not None and len(server.tar_requests) > die_after:
                        threading.Thread(target=server.stop).start()
                        self.close_connection = True
                        return
                super().do_GET()

            def copyfile(self, source, outputfile) -> None:
                if cut_first and self.path.endswith(".tar") and self.path not in server.cut:
                    server.cut.add(self.path)
                    data = source.read()
                    outputfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                super().copyfile(source, outputfile)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def serve():
    servers: list[ShardServer] = []

    def start(root: Path, **options) -> ShardServer:
        servers.append(ShardServer(root, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("tiny"), {"train": [4, 3], "val": [4, 4], "test": [3]},
                       seconds=(0.1, 0.2))


def emotrain(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def rows_without_timing(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def test_fit_and_evaluate_over_http_give_what_the_folder_gives(tiny, serve, tmp_path):
    server = serve(tiny.root)
    local, remote = tmp_path / "local", tmp_path / "remote"
    for shards, run in ((tiny.root, local), (server.url, remote)):
        result = emotrain("fit", "--shards", shards, "--split", "paper", "--out", run, "--epochs", "1", *FAST)
        assert result.exit_code == 0, result.output
    assert rows_without_timing(remote) == rows_without_timing(local)
    assert server.tar_requests  # the remote run really read over HTTP

    scores = {}
    for name, shards, workers in (("local", tiny.root, "0"), ("remote", server.url, "1")):
        out = tmp_path / f"eval-{name}.json"
        result = emotrain("evaluate", "--run", remote, "--split", "paper", "--part", "test", "--shards", shards,
                          "--out", out, "--workers", workers, "--device", "cpu")
        assert result.exit_code == 0, result.output
        scores[name] = {k: v for k, v in json.loads(out.read_text()).items() if k not in TIMING_KEYS}
    assert scores["remote"] == scores["local"] and scores["remote"]["samples"] == 3

    tables = {}
    for name, shards in (("local", tiny.root), ("remote", server.url)):
        out = tmp_path / f"predictions-{name}.csv"
        result = emotrain("predict", "--run", remote, "--shards", shards, "--out", out, "--device", "cpu")
        assert result.exit_code == 0, result.output
        tables[name] = out.read_text()
    assert tables["remote"] == tables["local"] and len(tables["local"].splitlines()) == 1 + sum(map(len, tiny.keys.values()))


def test_a_server_that_dies_mid_epoch_is_a_clear_error_in_bounded_time(tiny, serve, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTRAIN_FETCH_TIMEOUT", "2")
    monkeypatch.setenv("EMOTRAIN_FETCH_RETRIES", "1")
    server = serve(tiny.root, die_after=1)  # splits.json and index.json are served, then one shard
    start = time.monotonic()
    result = emotrain("fit", "--shards", server.url, "--split", "paper", "--out", tmp_path / "run", "--epochs", "1",
                      *FAST)
    assert time.monotonic() - start < 60
    assert result.exit_code != 0
    assert "shards in a row could not be fetched" in result.output and "is the shard server up?" in result.output
    assert f"{server.url}ses" in result.output and "(2 attempts, 2 s timeout)" in result.output


def test_strict_stops_at_the_first_shard_that_cannot_be_fetched(tiny, serve, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTRAIN_FETCH_RETRIES", "0")
    server = serve(tiny.root, die_after=0)
    result = emotrain("fit", "--shards", server.url, "--split", "paper", "--out", tmp_path / "run", "--epochs", "1",
                      "--strict", *FAST)
    assert result.exit_code != 0
    assert "could not be fetched before its first sample (1 attempts" in result.output
    assert "run without --strict" in result.output


def test_a_stopped_server_is_named_before_any_work(tiny, serve, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTRAIN_FETCH_RETRIES", "0")
    server = serve(tiny.root)
    server.stop()
    result = emotrain("fit", "--shards", server.url, "--split", "paper", "--out", tmp_path / "run", *FAST)
    assert result.exit_code != 0
    assert f"{server.url}splits.json: could not be read" in result.output
    assert not (tmp_path / "run").exists()


def test_a_connection_cut_mid_shard_is_retried_and_gives_each_sample_once(tiny, serve):
    server = serve(tiny.root, cut_first=True)
    part = read_part(server.url, "paper", "val", QUICK_FAILURE)
    batches = list(eval_loader(part, modality="av", batch_size=3))
    assert [k for b in batches for k in b.keys] == tiny.keys["val"]
    assert not [s for b in batches for s in b.skipped]
    assert len(server.tar_requests) == 2 * len(tiny.shards["val"])  # every shard cut once, then read whole


def test_a_server_that_never_answers_times_out():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts connections (the kernel does) and never sends a byte
    try:
        start = time.monotonic()
        with pytest.raises(ShardsError, match="splits.json: could not be read: .*timed out"):
            read_part(f"http://127.0.0.1:{silent.getsockname()[1]}/set/", "paper", "val",
                      FetchPolicy(timeout=0.5, retries=1, backoff=0.1))
        assert time.monotonic() - start < 10
    finally:
        silent.close()


def test_pipe_sources_read_like_the_folder_and_a_failing_command_is_named(tiny, tmp_path):
    part = read_part(f"pipe:cat {tiny.root}/", "paper", "val", QUICK_FAILURE)
    assert part.shards[0] == f"pipe:cat {tiny.root}/{tiny.shards['val'][0]}"
    keys = [k for b in eval_loader(part, modality="a", batch_size=4) for k in b.keys]
    assert keys == tiny.keys["val"]
    with pytest.raises(ShardsError, match=r"`cat /nonexistent/splits.json` exited with status 1: cat: "):
        read_part("pipe:cat /nonexistent/", "paper", "val", QUICK_FAILURE)


@pytest.mark.parametrize("spec, location, weight, url", [
    ("shards", "shards", 1.0, "shards/s1-all-0000.tar"),
    ("file:///data/set@0.5", "file:///data/set", 0.5, "/data/set/s1-all-0000.tar"),
    ("http://host:8080", "http://host:8080", 1.0, "http://host:8080/s1-all-0000.tar"),  # a port is not a weight
    ("http://host:8080/x/@2", "http://host:8080/x/", 2.0, "http://host:8080/x/s1-all-0000.tar"),
    ("s3://bucket/set", "s3://bucket/set", 1.0, "s3://bucket/set/s1-all-0000.tar"),
    ("pipe:curl -s http://h/set/@.25", "pipe:curl -s http://h/set/", 0.25, "pipe:curl -s http://h/set/s1-all-0000.tar"),
])
def test_sources_parse_weights_and_join_names_as_strings(spec, location, weight, url):
    source = parse_source(spec)
    assert (source.location, source.weight, source.url_of("s1-all-0000.tar")) == (location, weight, url)


def test_object_stores_map_to_their_command_line_tools():
    assert command_for("s3://bucket/emo av/a.tar") == "aws s3 cp 's3://bucket/emo av/a.tar' -"
    assert command_for("gs://bucket/shards/a.tar") == "gsutil cat gs://bucket/shards/a.tar"
    assert command_for("http://host/a.tar") is None


def test_torchrun_ranks_stop_when_the_server_dies(tmp_path, serve):
    # Two CPU ranks (gloo); the server dies after a few shards, while both ranks train: every
    # rank must stop (none left waiting in an all-reduce), with the URL in the error.
    fake = make_shards(tmp_path / "shards", {"train": [3] * 8, "val": [3, 3]}, seconds=(0.1, 0.2))
    server = serve(fake.root, die_after=3)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "emotrain.cli", "fit", "--shards", server.url, "--split", "paper", "--out", str(tmp_path / "run"),
               "--model", "small", "--device", "cpu", "--workers", "0", "--batch-size", "2", "--epochs", "1"]
    env = {**os.environ, "EMOTRAIN_FETCH_TIMEOUT": "2", "EMOTRAIN_FETCH_RETRIES": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    except subprocess.TimeoutExpired as exn:
        pytest.fail(f"a rank hung after the server died: {exn.stderr}")
    assert done.returncode != 0
    assert "could not be fetched" in done.stderr and server.url in done.stderr


def test_a_shard_missing_on_the_server_is_named_and_not_retried(tiny, serve, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for name in ["splits.json", "index.json", *tiny.shards["val"][1:]]:  # the first val shard is missing
        (served / name).write_bytes((tiny.root / name).read_bytes())
    server = serve(served)
    part = read_part(server.url, "paper", "val", QUICK_FAILURE)
    batches = list(eval_loader(part, modality="a", batch_size=4))
    assert [str(s) for b in batches for s in b.skipped] == [
        f"{server.url}{tiny.shards['val'][0]}: -: not found: {server.url}{tiny.shards['val'][0]}: HTTP 404 Not Found"]
    assert [k for b in batches for k in b.keys] == tiny.keys["val"][4:]
    assert server.tar_requests.count("/" + tiny.shards["val"][0]) == 1


def test_bad_fetch_settings_are_named(tiny, monkeypatch):
    monkeypatch.setenv("EMOTRAIN_FETCH_RETRIES", "-1")
    with pytest.raises(ShardsError, match="EMOTRAIN_FETCH_RETRIES >= 0; got 30.0, -1"):
        read_part(tiny.root, "paper", "val")
