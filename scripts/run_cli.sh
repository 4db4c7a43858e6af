#!/usr/bin/env bash
# run_cli.sh — LoopOS's wrapper around train_vocab, kept so its users' commands work unchanged.
#
#   scripts/run_cli.sh train-vocab [options]          (alias: vocab-train)
#   scripts/run_cli.sh resume <checkpoint> [options]  (alias: continue)
#   scripts/run_cli.sh generate [checkpoint] [opts]   (alias: gen; default outputs/autoregressive/model_checkpoint.bin)
#   scripts/run_cli.sh help
#   scripts/run_cli.sh                                (a menu, on a terminal)
#
# Paths stay relative to the folder you run it from. It runs the compiled ./train_vocab when the
# project has one (`make compile`), else the sources through Bun; TRAIN_VOCAB_BIN overrides both.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEFAULT_CHECKPOINT="outputs/autoregressive/model_checkpoint.bin"

train_vocab() {
  if [[ -n "${TRAIN_VOCAB_BIN:-}" ]]; then
    "$TRAIN_VOCAB_BIN" "$@"
  elif [[ -x "$ROOT/train_vocab" ]]; then
    "$ROOT/train_vocab" "$@"
  else
    if ! command -v bun >/dev/null 2>&1; then
      echo "error: neither $ROOT/train_vocab nor bun was found. Run \`make compile\` (or install Bun) first." >&2
      exit 2
    fi
    bun run "$ROOT/bin/train-vocab.ts" "$@"
  fi
}

usage() {
  cat <<USAGE
Usage: scripts/run_cli.sh <command> [options]

Commands:
  train-vocab [options]            Train a model (alias: vocab-train); --resume <file> continues one
  resume <checkpoint> [options]    Continue training from a checkpoint (alias: continue)
  generate [checkpoint] [options]  Write text with a model (alias: gen; default: $DEFAULT_CHECKPOINT)
  help                             This help, then train_vocab's own

Examples:
  scripts/run_cli.sh train-vocab --data data/text.txt --vocab outputs/tokenizer.vocab --epochs 3
  scripts/run_cli.sh resume $DEFAULT_CHECKPOINT --data more.txt --vocab outputs/tokenizer.vocab --epochs 5 --learning-rate 0.00005
  scripts/run_cli.sh generate --prompt "Once upon a time"
USAGE
}

generate() {
  local checkpoint="$DEFAULT_CHECKPOINT"
  if [[ $# -gt 0 && "$1" != -* ]]; then
    checkpoint="$1"
    shift
  fi
  for arg in "$@"; do
    if [[ "$arg" == "--checkpoint" || "$arg" == --checkpoint=* ]]; then
      train_vocab generate "$@"
      return
    fi
  done
  train_vocab generate --checkpoint "$checkpoint" "$@"
}

resume() {
  if [[ $# -eq 0 || "$1" == -* ]]; then
    echo "error: resume needs the checkpoint first: scripts/run_cli.sh resume <checkpoint> [options]" >&2
    exit 2
  fi
  train_vocab resume "$@"
}

ask() { # ask <prompt> <default>: read one answer, the default on an empty line
  local answer
  read -r -p "$1 [$2]: " answer || true
  echo "${answer:-$2}"
}

menu() {
  echo "train-vocab"
  echo "  1) Train a model"
  echo "  2) Resume training from a checkpoint"
  echo "  3) Generate text"
  echo "  4) Help"
  echo "  5) Quit"
  local choice
  read -r -p "Choose 1-5: " choice || exit 0
  case "$choice" in
    1)
      local data vocab epochs
      data="$(ask "Training data (file or folder)" "data/train.txt")"
      vocab="$(ask "Vocabulary file" "outputs/tokenizer.vocab")"
      epochs="$(ask "Epochs" "3")"
      train_vocab train-vocab --data "$data" --vocab "$vocab" --epochs "$epochs"
      ;;
    2)
      local checkpoint data vocab
      checkpoint="$(ask "Checkpoint" "$DEFAULT_CHECKPOINT")"
      data="$(ask "Training data (empty: load and verify only)" "")"
      vocab="$(ask "Vocabulary file" "outputs/tokenizer.vocab")"
      if [[ -n "$data" ]]; then
        train_vocab resume "$checkpoint" --data "$data" --vocab "$vocab"
      else
        train_vocab resume "$checkpoint" --vocab "$vocab"
      fi
      ;;
    3)
      local checkpoint vocab prompt
      checkpoint="$(ask "Checkpoint" "$DEFAULT_CHECKPOINT")"
      vocab="$(ask "Vocabulary file" "outputs/tokenizer.vocab")"
      prompt="$(ask "Prompt" "The")"
      train_vocab generate --checkpoint "$checkpoint" --vocab "$vocab" --prompt "$prompt"
      ;;
    4) usage ;;
    5 | q | "") exit 0 ;;
    *)
      echo "error: choose a number from 1 to 5" >&2
      exit 2
      ;;
  esac
}

if [[ $# -eq 0 ]]; then
  if [[ -t 0 && -t 1 ]]; then
    menu
  else
    usage
  fi
  exit 0
fi

command="$1"
shift
case "$command" in
  train-vocab | vocab-train) train_vocab train-vocab "$@" ;;
  resume | continue) resume "$@" ;;
  generate | gen) generate "$@" ;;
  help | -h | --help)
    usage
    echo
    train_vocab --help
    ;;
  *)
    echo "error: unknown command \"$command\" (use train-vocab, resume, generate or help)" >&2
    usage >&2
    exit 2
    ;;
esac
