#!/usr/bin/env bash
# docs/benchmarks.md is assembled from one section per area (docs/benchmarks/*.md), each written with its commands.
set -euo pipefail
cd "$(dirname "$0")"
{
  cat <<'HEAD'
# Measured results

Every figure here was measured by a script in `benchmarks/` with the command written next to it, on the machine
named in its section (Debian 12, 2 cores, 24 GiB, CPU only), on 2026-11-27. That machine was shared with the other
areas' training jobs while these ran, so wall times are inflated and noisy (each section gives the load); iteration
counts and errors are exact. No GPU figures: this task was not lent a GPU machine.

Sections, in order: neural preconditioner (DCDM, issue 2), DOLFINx integration (issue 3), neural-operator
surrogates (issue 4), Walk-on-Spheres (issue 5), adversarial adaptive sampling (issue 6).

HEAD
  for area in dcdm fenics neural_operator wos aas; do
    f="benchmarks/$area.md"
    [ -f "$f" ] || continue
    printf '\n---\n\n'
    # demote headings one level: the section's title becomes ##, its parts ###
    awk '{ if ($0 ~ /^#+ /) sub(/^#/, "##"); print }' "$f"
  done
} > benchmarks.md
