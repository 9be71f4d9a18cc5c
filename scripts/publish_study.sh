#!/bin/sh
# Copy a study's records (each run's config.yaml, metrics.csv, report.json, and the study's
# study.md, study.json and plots) into docs/results/studies/, without checkpoints or
# TensorBoard logs, so that the published tables come with the per-run data behind them. A
# study rerun with `--set out_dir=docs/results/studies` reuses these runs and trains only the
# missing ones.
# Usage: scripts/publish_study.sh OUT_DIR/study-<setting> [DEST]
# (DEST defaults to docs/results/studies/study-<setting>; name it for studies of one setting
# with other parameters, such as the sweep of a in docs/results/studies/sweep-a/.)
set -eu
src=${1:?usage: scripts/publish_study.sh OUT_DIR/study-<setting> [DEST]}
[ -f "$src/study.json" ] || { echo "publish_study: $src has no study.json" >&2; exit 2; }
dst=${2:-docs/results/studies/$(basename "$src")}
mkdir -p "$dst"
cp "$src/study.md" "$src/study.json" "$dst/"
for f in "$src"/*.png; do if [ -f "$f" ]; then cp "$f" "$dst/"; fi; done
for run in "$src"/*/; do
    [ -f "$run/report.json" ] || continue
    name=$(basename "$run")
    mkdir -p "$dst/$name"
    for f in config.yaml metrics.csv report.json; do
        if [ -f "$run/$f" ]; then cp "$run/$f" "$dst/$name/"; fi
    done
done
echo "published $(ls -d "$dst"/*/ | wc -l) runs to $dst"
