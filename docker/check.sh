#!/usr/bin/env bash
# `make docker-check`: build emoav-prep and emoav-train and run the compose flow's steps in them
# on the CPU (docker/check.py does the work; docs/docker.md, "Checking the images here").
#
# This part finds a container engine and a Python that reads YAML. Where there is none and the
# machine allows it (root and apt-get, as on the project's build hosts) it installs podman, runc
# and mmdebstrap from Debian's packages, as `make test` makes its own venv; where it cannot, it
# prints one line saying what to install and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; }
apt_install() {
    echo "docker-check: installing $* (apt-get)" >&2
    apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}

engine="${ENGINE:-}"
if [ -z "$engine" ]; then
    if command -v podman > /dev/null; then
        engine=podman
    elif command -v docker > /dev/null && docker info > /dev/null 2>&1; then
        engine=docker
    else
        engine=podman
    fi
fi
case "$engine" in
    podman)
        # podman builds FROM a base made here (mmdebstrap) and runs with runc (crun refuses
        # hybrid cgroups); missing tools are installed where possible.
        missing=()
        for tool in podman runc mmdebstrap; do
            command -v "$tool" > /dev/null || missing+=("$tool")
        done
        if [ ${#missing[@]} -gt 0 ]; then
            if can_install; then
                apt_install "${missing[@]}"
            else
                echo "docker-check: no container engine: install ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]}), or start a Docker engine and run ENGINE=docker make docker-check" >&2
                exit 2
            fi
        fi
        ;;
    docker)
        if ! docker info > /dev/null 2>&1; then
            echo "docker-check: ENGINE=docker but no Docker engine answers (docker info failed): start one, or install podman, runc and mmdebstrap" >&2
            exit 2
        fi
        ;;
    *)
        echo "docker-check: ENGINE must be podman or docker, got '$engine'" >&2
        exit 2
        ;;
esac

python=""
for candidate in "${PYTHON:-python3}" /usr/bin/python3; do
    if command -v "$candidate" > /dev/null && "$candidate" -c 'import yaml' 2> /dev/null; then
        python="$candidate"
        break
    fi
done
if [ -z "$python" ]; then
    if can_install; then
        apt_install python3-yaml
        python=/usr/bin/python3
    else
        echo "docker-check: no Python with PyYAML: install python3-yaml (or pip install pyyaml)" >&2
        exit 2
    fi
fi

exec "$python" docker/check.py --engine "$engine" "$@"
