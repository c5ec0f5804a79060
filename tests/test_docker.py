"""The Docker images and the compose pipeline, checked without a Docker engine.

Parses docker/Dockerfile.prep, docker/Dockerfile.train and docker/compose.yaml and holds them
to the code they package: what each image installs, where the prep image puts the face
detector's weights, what the build context holds, and that every command compose runs is a
real CLI verb with real options.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import click
import pytest
import yaml
from click.testing import CliRunner
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
PREP = DOCKER / "Dockerfile.prep"
TRAIN = DOCKER / "Dockerfile.train"
COMPOSE = DOCKER / "compose.yaml"
ENTRYPOINT = DOCKER / "entrypoint-train.sh"

# Distribution and module names that belong to preprocessing only.
PREP_ONLY = re.compile(r"face[-_]alignment|opencv|\bcv2\b|ffmpeg|scikit-image|skimage", re.IGNORECASE)
INSTALL_COMMAND = re.compile(r"\b(pip3?|uv pip|conda|mamba|apt-get|apt) install\b")


def parse(dockerfile: Path) -> DockerfileParser:
    with dockerfile.open("rb") as file:
        return DockerfileParser(fileobj=file, cache_content=True)


def instructions(dockerfile: Path, name: str) -> list[str]:
    return [item["value"] for item in parse(dockerfile).structure if item["instruction"] == name]


def install_commands(dockerfile: Path) -> list[str]:
    """The install commands among the shell commands of every RUN, one string each."""
    commands = []
    for run in instructions(dockerfile, "RUN"):
        commands += [part.strip() for part in re.split(r"&&|;|\|\|", run) if INSTALL_COMMAND.search(part)]
    return commands


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# --- the train image -----------------------------------------------------------------------


def test_train_image_installs_the_train_extra_and_nothing_of_preprocessing():
    commands = install_commands(TRAIN)
    pip = [command for command in commands if "pip" in command]
    assert any(".[train]" in command for command in pip), f"no pip install of '.[train]' in {pip}"
    for command in commands:
        assert not PREP_ONLY.search(command), f"the train image installs a preprocessing package: {command}"
        assert ".[prep]" not in command and ".[dev]" not in command, command


def test_train_image_keeps_the_base_images_torch():
    """pip may not replace the base image's CUDA build of torch: a constraint or --no-deps holds it."""
    (install,) = [command for command in install_commands(TRAIN) if ".[train]" in command]
    assert re.search(r"(--constraint|-c)\s|--no-deps", install), install


def test_train_base_image_torch_is_within_the_train_extras_cap():
    base = parse(TRAIN).baseimage  # the default of ARG BASE_IMAGE, substituted
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda[\d.]+-cudnn\d+-runtime", base)
    assert match, f"BASE_IMAGE {base!r} is not an official pytorch/pytorch CUDA runtime tag"
    torch = next(Requirement(line) for line in pyproject()["project"]["optional-dependencies"]["train"]
                 if Requirement(line).name == "torch")
    assert Version(match[1]) in torch.specifier, f"{base} has torch {match[1]}, the train extra wants {torch}"


def test_imagenet_weights_are_optional_and_off_by_default():
    assert parse(TRAIN).args["IMAGENET_WEIGHTS"] == "0"
    fetch = [run for run in instructions(TRAIN, "RUN") if "IMAGENET_WEIGHTS" in run and "IMAGENET1K_V1" in run]
    assert fetch, "no RUN fetches ResNet50_Weights.IMAGENET1K_V1 under IMAGENET_WEIGHTS"


# --- the prep image ------------------------------------------------------------------------


def test_prep_image_installs_the_prep_extra_with_cpu_torch_and_system_ffmpeg():
    commands = install_commands(PREP)
    assert any(".[prep]" in c and "download.pytorch.org/whl/cpu" in c for c in commands), commands
    assert any(c.startswith("apt-get install") and re.search(r"\bffmpeg\b", c) for c in commands), commands


def test_prep_image_stores_the_s3fd_weights_where_face_alignment_reads_them(monkeypatch):
    import torch.hub
    from face_alignment.detection.sfd.sfd_detector import models_urls

    torch_home = parse(PREP).envs.get("TORCH_HOME")
    assert torch_home, "Dockerfile.prep sets no TORCH_HOME"
    # face-alignment loads its detector with torch.hub.load_state_dict_from_url(url): the file
    # is looked up in get_dir()/checkpoints under the URL's file name.
    url = models_urls["s3fd"]
    monkeypatch.setenv("TORCH_HOME", torch_home)
    expected = str(PurePosixPath(torch.hub.get_dir()) / "checkpoints" / PurePosixPath(url).name)

    args = parse(PREP).args  # ARG defaults: the URL is S3FD_URL's
    runs = [re.sub(r"\$\{?(\w+)\}?", lambda m: torch_home if m[1] == "TORCH_HOME" else args.get(m[1], m[0]), run)
            for run in instructions(PREP, "RUN")]
    fetch = [run for run in runs if url in run]
    assert fetch, f"no RUN fetches {url}"
    assert expected in fetch[0], f"the weights do not go to {expected}: {fetch[0]}"
    offline = [run for run in runs if run.startswith("--network=none") and "SFDDetector" in run]
    assert offline, "no RUN --network=none proves the detector loads from the cache"


# --- the build context ---------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def pattern_regex(pattern: str) -> re.Pattern:
    """Docker's .dockerignore syntax: ** crosses folders, * and ? do not."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    wild = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))


def excluded_from_context(path: str, patterns: list[str]) -> bool:
    """Whether docker build leaves `path` (relative to the context) out: the last pattern that
    matches the path or one of its folders decides, and `!` patterns bring paths back."""
    parents = [str(PurePosixPath(*PurePosixPath(path).parts[:i])) for i in range(1, len(PurePosixPath(path).parts) + 1)]
    excluded = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        regex = pattern_regex(pattern.lstrip("!"))
        if any(regex.fullmatch(parent) for parent in parents):
            excluded = not keep
    return excluded


def test_dockerignore_matcher_follows_dockers_rules():
    patterns = ["*", "!pipeline", "**/__pycache__", "!keep/**/x.py"]
    assert excluded_from_context(".venv/bin/python", patterns)
    assert not excluded_from_context("pipeline/emoprep/cli.py", patterns)
    assert excluded_from_context("pipeline/emoprep/__pycache__/cli.pyc", patterns)
    assert not excluded_from_context("keep/a/b/x.py", patterns)
    assert excluded_from_context("keep/a/b/y.py", patterns)


def copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for item in parse(dockerfile).structure:
        if item["instruction"] not in ("COPY", "ADD"):
            continue
        words = [word for word in shlex.split(item["value"]) if not word.startswith("--")]
        if any(word.startswith("--from") for word in shlex.split(item["value"])):
            continue  # from another stage or image, not from the context
        sources += words[:-1]
    return sources


@pytest.mark.parametrize("dockerfile", [PREP, TRAIN], ids=lambda path: path.name)
def test_every_copied_source_exists_and_is_in_the_build_context(dockerfile):
    patterns = dockerignore_patterns()
    sources = copy_sources(dockerfile)
    assert sources
    for source in sources:
        path = REPO / source
        assert path.exists(), f"{dockerfile.name} copies {source}, which is not in the repository"
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        assert files, f"{dockerfile.name} copies {source}, which holds no Python source"
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            assert not excluded_from_context(relative, patterns), f".dockerignore leaves {relative} out"


@pytest.mark.parametrize("dockerfile", [PREP, TRAIN], ids=lambda path: path.name)
def test_images_copy_everything_pip_install_reads(dockerfile):
    """pyproject.toml, its readme and the package folders: without one, `pip install .` fails."""
    project = pyproject()
    needed = {"pyproject.toml", project["project"]["readme"], *project["tool"]["setuptools"]["packages"]["find"]["where"]}
    assert needed <= set(copy_sources(dockerfile)), f"{dockerfile.name} does not copy {needed - set(copy_sources(dockerfile))}"


# --- the train entrypoint ------------------------------------------------------------------


def test_entrypoint_knows_exactly_the_verbs_of_emotrain():
    from emotrain.cli import main

    case = re.search(r"^\s*([\w|]+)\|-\*\|\"\"\)", ENTRYPOINT.read_text(), re.MULTILINE)
    assert case, "entrypoint-train.sh has no `verbs|-*|\"\")` case"
    assert set(case[1].split("|")) == set(main.commands)


def run_entrypoint(tmp_path: Path, *args: str) -> str:
    """What the entrypoint runs for `args`, with stand-ins for emotrain and torchrun that echo their argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for program in ("emotrain", "torchrun"):
        (bin_dir / program).write_text(f'#!/bin/sh\necho {program} "$@"\n')
        (bin_dir / program).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("args, runs", [
    (["fit", "--shards", "/data/shards"], "emotrain fit --shards /data/shards"),
    (["evaluate", "--help"], "emotrain evaluate --help"),
    (["--version"], "emotrain --version"),
    ([], "emotrain"),
    (["torchrun", "--nproc_per_node", "8", "-m", "emotrain.cli", "fit"],
     "torchrun --nproc_per_node 8 -m emotrain.cli fit"),
])
def test_entrypoint_sends_verbs_to_emotrain_and_runs_other_commands_as_given(tmp_path, args, runs):
    assert run_entrypoint(tmp_path, *args) == runs


# --- the compose pipeline ------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def service_dockerfile(service: dict) -> Path:
    build = service["build"]
    return (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()


def cli_for(dockerfile: Path) -> click.Group:
    if dockerfile == PREP:
        from emoprep.cli import main
    elif dockerfile == TRAIN:
        from emotrain.cli import main
    else:
        raise AssertionError(f"compose builds {dockerfile}, neither of the two images")
    return main


def cli_arguments(command: list[str]) -> list[str]:
    """The CLI's arguments in a compose command: the command itself, or what torchrun runs."""
    if command[0] != "torchrun":
        return command
    from torch.distributed.run import get_args_parser

    launched = get_args_parser().parse_args(command[1:])  # an unknown torchrun option fails here
    assert launched.module and launched.training_script == "emotrain.cli", command
    return launched.training_script_args


def test_compose_runs_the_pipeline_in_order_on_the_two_images():
    services = compose()["services"]
    assert [name for name in ("synth", "extract", "shard", "fit") if name in services] == list(services)
    for name in ("synth", "extract", "shard"):
        assert service_dockerfile(services[name]) == PREP, name
    assert service_dockerfile(services["fit"]) == TRAIN
    for name, before in (("extract", "synth"), ("shard", "extract"), ("fit", "shard")):
        assert services[name]["depends_on"][before]["condition"] == "service_completed_successfully", name
    # synth is what a real corpus replaces: it runs only in its profile.
    assert services["synth"]["profiles"] == ["synth"]
    assert services["extract"]["depends_on"]["synth"]["required"] is False


def test_compose_volumes_are_declared_and_fit_reserves_the_gpus():
    config = compose()
    assert set(config["volumes"]) == {"corpus", "work", "shards", "runs"}
    for name, service in config["services"].items():
        for volume in service["volumes"]:
            source = re.sub(r"\$\{\w+:-(\w+)\}", r"\1", volume).split(":")[0]  # ${IEMOCAP:-corpus}
            assert source in config["volumes"], f"{name} mounts undeclared volume {source}"
    devices = config["services"]["fit"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


@pytest.mark.parametrize("name", ["synth", "extract", "shard", "fit"])
def test_compose_command_is_a_real_verb_with_real_options(name):
    service = compose()["services"][name]
    arguments = cli_arguments(service["command"])
    verb = arguments[0]
    result = CliRunner().invoke(cli_for(service_dockerfile(service)), [verb, "--help"])
    assert result.exit_code == 0, f"{name}: `{verb} --help` failed: {result.output}"
    for option in (word for word in arguments if word.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.output), (
            f"compose service {name} passes {option}, which `{verb} --help` does not list"
        )


# --- make docker-check (docker/check.py): how it reads the compose file --------------------
# The check itself builds images and runs containers (minutes); these only hold its reading of
# compose.yaml to the file, so the commands it runs are the file's.


def docker_check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docker_check", DOCKER / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docker_check_runs_every_compose_service():
    check = docker_check()
    source = (DOCKER / "check.py").read_text()
    for name in compose()["services"]:
        assert f'"{name}"' in source, f"docker/check.py never runs compose service {name}"
    for base in (check.PYTHON_BASE, check.PYTORCH_BASE):
        assert base.startswith("localhost/emoav-standin/"), base


def test_docker_check_changes_only_fits_process_count_and_size():
    check = docker_check()
    command = compose()["services"]["fit"]["command"]
    changed = check.cpu_fit_command(command)
    assert changed[:len(command)] == [check.CPU_FIT_NPROC if before == "gpu" else before for before in command]
    assert changed[len(command):] == check.CPU_FIT_OPTIONS
    result = CliRunner().invoke(cli_for(TRAIN), ["fit", "--help"])
    for option in (word for word in check.CPU_FIT_OPTIONS if word.startswith("--")):
        assert option in result.output, option


def test_docker_check_mounts_the_compose_volumes_under_its_own_names(monkeypatch):
    check = docker_check()
    runner = check.Check("podman", Path("/tmp/unused"), "standin", keep_volumes=False)
    monkeypatch.delenv("IEMOCAP", raising=False)
    extract = compose()["services"]["extract"]
    assert runner.volume_args(extract) == ["-v", "emoav-check_corpus:/data/corpus:ro", "-v", "emoav-check_work:/data/work"]
    monkeypatch.setenv("IEMOCAP", "/abs/IEMOCAP")
    assert runner.volume_args(extract)[1] == "/abs/IEMOCAP:/data/corpus:ro"


def test_stand_in_bases_only_through_the_build_argument():
    """Neither Dockerfile names a stand-in: each takes its base from ARG BASE_IMAGE, whose default
    is the real one, so on a real machine they build unchanged."""
    for dockerfile in (PREP, TRAIN):
        text = dockerfile.read_text()
        assert "emoav-standin" not in text and "localhost/" not in text, dockerfile.name
        assert re.search(r"^ARG BASE_IMAGE=\S+$", text, re.MULTILINE), dockerfile.name
        assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.MULTILINE), dockerfile.name
    assert parse(PREP).baseimage == "python:3.11-slim-bookworm"
