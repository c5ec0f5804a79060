"""Where shards come from: a local folder or a URL prefix, opened with bounded waits and retries.

A source is what `--shards` names: a folder written by `emoprep shard`, or a prefix that the
shard set's file names are appended to *as strings*:

    shards/                         a local folder (file://... too)
    http://host/shards/             HTTP(S): the standard library's client (urllib)
    pipe:curl -s http://host/x/     any command that writes the named file to stdout
    s3://bucket/shards/             -> pipe:aws s3 cp s3://bucket/shards/NAME -   (AWS CLI)
    gs://bucket/shards/             -> pipe:gsutil cat gs://bucket/shards/NAME    (Google Cloud SDK)

A trailing `@WEIGHT` (e.g. `http://host/msp/@0.5`) sets the source's sampling weight when
sources are mixed for training. An `@` followed by a number never ends a real prefix; a `:`
would be ambiguous with a port (`http://host:8080`).

Why not webdataset's gopen for HTTP: it runs curl with `--retry 30 --retry-delay 2
--connect-timeout 30` and no stall limit, so a dead server costs minutes per shard and a
server that accepts but never answers hangs the loader for good. Here every wait is bounded
(`FetchPolicy.timeout` seconds without a byte) and a fetch is retried `retries` times with
doubling pauses, then it fails with the URL and the reason. Remote reads raise `FetchError`
(an OSError) or the socket's own OSError; `is_transient` says which failures a retry can cure.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import select
import shlex
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from shardformat import SHARD_NAME

REMOTE_SCHEMES = ("http://", "https://", "pipe:", "s3://", "gs://")
SET_FILES = ("splits.json", "index.json")  # besides its shards, the files a shard set has
WEIGHT_SUFFIX = re.compile(r"@(\d+(?:\.\d*)?|\.\d+)$")
# Server replies that another try may cure; any other HTTP error (404, 403, ...) fails at once.
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
STDERR_TAIL = 300  # characters of a failed command's stderr quoted in the error

T = TypeVar("T")


class FetchError(OSError):
    """A remote file could not be read: the message names the URL (or command) and the reason."""


@dataclass(frozen=True)
class FetchPolicy:
    """How long to wait for a remote byte and how often to try again.

    Defaults bound a dead or silent server to at most (retries + 1) x timeout + the pauses
    (4 x 30 s + 1 + 2 + 4 s = 127 s) per shard; EMOTRAIN_FETCH_TIMEOUT and
    EMOTRAIN_FETCH_RETRIES override them (they reach every torchrun rank and loader worker).
    """

    timeout: float = 30.0  # seconds without a byte (connect, then each read) before a try is abandoned
    retries: int = 3  # tries after the first
    backoff: float = 1.0  # seconds before the first retry, doubled before each next one

    @classmethod
    def from_env(cls) -> FetchPolicy:
        default = cls()
        try:
            timeout = float(os.environ.get("EMOTRAIN_FETCH_TIMEOUT", default.timeout))
            retries = int(os.environ.get("EMOTRAIN_FETCH_RETRIES", default.retries))
        except ValueError as exn:
            raise ValueError(f"EMOTRAIN_FETCH_TIMEOUT / EMOTRAIN_FETCH_RETRIES: {exn}") from exn
        if timeout <= 0 or retries < 0:
            raise ValueError(f"EMOTRAIN_FETCH_TIMEOUT must be > 0 and EMOTRAIN_FETCH_RETRIES >= 0; "
                             f"got {timeout}, {retries}")
        return cls(timeout=timeout, retries=retries, backoff=default.backoff)

    def pauses(self) -> Iterator[float]:
        """The pause before each retry: backoff, 2 backoff, 4 backoff, ... (retries of them)."""
        return (self.backoff * 2**n for n in range(self.retries))


@dataclass(frozen=True)
class ShardSource:
    """One `--shards` value: where the shard set is, and its weight when sources are mixed."""

    location: str  # a folder, or a URL prefix as given (s3:// and gs:// are mapped when opened)
    weight: float = 1.0

    @property
    def remote(self) -> bool:
        return self.location.startswith(REMOTE_SCHEMES)

    def url_of(self, name: str) -> str:
        """A file of the set: the name joined to the folder, or appended to the prefix as a string.

        `name` comes from the set itself (splits.json, index.json), so it must be one of the set's
        own files or a shard name of the format: never a path that leaves the folder, never shell
        syntax. For a `pipe:` prefix it is quoted as well; whether a shell runs at all is the
        user's --shards value alone.
        """
        if name not in SET_FILES and not SHARD_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a file of a shard set; refusing to open it")
        if not self.remote:
            return str(Path(self.location.removeprefix("file://")) / name)
        if self.location.startswith("pipe:"):  # a command prefix: the name is its last argument's end
            return self.location + shlex.quote(name)
        return self.location.rstrip("/") + "/" + name

    def __str__(self) -> str:
        return self.location if self.weight == 1.0 else f"{self.location}@{self.weight:g}"


def parse_source(spec: str) -> ShardSource:
    """`LOCATION` or `LOCATION@WEIGHT` -> ShardSource; ValueError for an empty location or a zero weight."""
    weight = 1.0
    if match := WEIGHT_SUFFIX.search(spec):
        spec, weight = spec[: match.start()], float(match.group(1))
    if not spec:
        raise ValueError("an empty shard source; give a folder or a URL prefix")
    if weight <= 0:
        raise ValueError(f"{spec}@{weight:g}: a source's weight must be positive")
    return ShardSource(spec, weight)


def command_for(url: str) -> str | None:
    """The shell command that reads a pipe:, s3:// or gs:// URL to stdout; None for other URLs."""
    if url.startswith("pipe:"):
        return url[len("pipe:"):]
    if url.startswith("s3://"):
        return f"aws s3 cp {shlex.quote(url)} -"
    if url.startswith("gs://"):
        return f"gsutil cat {shlex.quote(url)}"
    return None


def open_url(url: str, policy: FetchPolicy) -> BinaryIO:
    """A readable binary stream of a local path or a URL; every wait on it bounded by policy.timeout.

    FileNotFoundError when the file is not there (a local path, or HTTP 404).
    """
    if not url.startswith(REMOTE_SCHEMES):
        return open(url.removeprefix("file://"), "rb")
    command = command_for(url)
    if command is not None:
        return PipeStream(command, policy.timeout)
    return HTTPStream(url, policy.timeout)


class HTTPStream:
    """An HTTP(S) response body; a connection that closes before Content-Length bytes is an error.

    (http.client's read(n) returns b"" at an early close instead of raising, and a tar cut
    between members would then read as a shorter, valid tar.)
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        try:
            self.response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310: the user's own --shards URL
        except urllib.error.HTTPError as exn:
            if exn.code == 404:
                raise FileNotFoundError(f"{url}: HTTP 404 Not Found") from exn
            raise FetchError(f"{url}: HTTP {exn.code} {exn.reason}") from exn
        except urllib.error.URLError as exn:
            raise FetchError(f"{url}: {exn.reason}") from exn
        length = self.response.headers.get("Content-Length")
        self.remaining = int(length) if length and length.isdigit() else None

    def read(self, size: int = -1) -> bytes:
        data = self.response.read(size)
        if self.remaining is not None:
            self.remaining -= len(data)
            if not data and size and self.remaining > 0:
                raise FetchError(f"{self.url}: the connection closed {self.remaining} bytes before the end")
        return data

    def close(self) -> None:
        self.response.close()

    def __str__(self) -> str:
        return self.url


class PipeStream:
    """A shell command's stdout; no byte for `timeout` seconds kills it, a non-zero exit is an error."""

    def __init__(self, command: str, timeout: float) -> None:
        self.command, self.timeout = command, timeout
        self.errors = tempfile.TemporaryFile()  # a pipe could fill and stall the command
        self.process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=self.errors,  # noqa: S602
                                        bufsize=0, start_new_session=True)

    def read(self, size: int = -1) -> bytes:
        fd = self.process.stdout.fileno()
        chunks, wanted = [], size if size >= 0 else None
        while wanted is None or wanted > 0:
            ready, _, _ = select.select([fd], [], [], self.timeout)
            if not ready:
                self.close()
                raise FetchError(f"`{self.command}`: no data for {self.timeout:g} s")
            chunk = os.read(fd, wanted if wanted is not None else 1 << 20)
            if not chunk:
                self._check_exit()
                break
            chunks.append(chunk)
            if wanted is not None:
                break  # a short read is fine: tarfile asks again
        return b"".join(chunks)

    def _check_exit(self) -> None:
        try:
            status = self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise FetchError(f"`{self.command}`: closed its output but did not exit in {self.timeout:g} s") from None
        if status != 0:
            self.errors.seek(0)
            tail = self.errors.read().decode(errors="replace").strip()[-STDERR_TAIL:]
            raise FetchError(f"`{self.command}` exited with status {status}" + (f": {tail}" if tail else ""))

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)  # the whole session: `sh -c` and what it started
            self.process.wait()
        self.process.stdout.close()
        self.errors.close()

    def __str__(self) -> str:
        return f"pipe:{self.command}"


def is_transient(exn: BaseException) -> bool:
    """A failure another try may cure: a lost or silent connection, a failed command, a busy server."""
    if isinstance(exn, FileNotFoundError):
        return False
    if isinstance(exn, FetchError):
        cause = exn.__cause__
        if isinstance(cause, urllib.error.HTTPError):
            return cause.code in TRANSIENT_HTTP
        return True
    return isinstance(exn, (OSError, http.client.HTTPException))


def with_retries(read: Callable[[], T], policy: FetchPolicy) -> T:
    """read(), tried again after each pause of the policy while it fails transiently."""
    for pause in policy.pauses():
        try:
            return read()
        except Exception as exn:  # noqa: BLE001: is_transient decides
            if not is_transient(exn):
                raise
        time.sleep(pause)
    return read()


def read_bytes(url: str, policy: FetchPolicy) -> bytes:
    """The whole file at url (a small one: splits.json, index.json), with retries."""

    def read() -> bytes:
        with contextlib.closing(open_url(url, policy)) as stream:
            return stream.read()

    return with_retries(read, policy)
