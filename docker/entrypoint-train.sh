#!/bin/sh
# Entrypoint of the train image. emotrain's verbs and options go to emotrain; any other command
# (torchrun, python, bash, nvidia-smi) runs as given, so one image serves both
#   docker run IMAGE fit --shards /data/shards ...                              one process
#   docker run IMAGE torchrun --standalone --nproc_per_node 8 -m emotrain.cli fit ...   one per GPU
# tests/test_docker.py checks that the verbs listed here are emotrain's.
set -e
case "${1:-}" in
    fit|evaluate|experiment|predict|-*|"")
        exec emotrain "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
