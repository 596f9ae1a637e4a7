"""Render benchmarks/dcdm_solvers.py's JSON as the markdown tables of docs/benchmarks.md.

    .venv/bin/python benchmarks/dcdm_report.py docs/results/dcdm_solvers.json
"""
from __future__ import annotations

import json
import math
import sys
from collections import defaultdict


def fmt(v, spec):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def main(path):
    data = json.load(open(path))
    rows = data["rows"]
    print(f"Machine: {data['machine']}; PETSc {data['petsc']}; date {data['date']}.\n")
    groups = defaultdict(list)
    for r in rows:
        groups[(r["problem"], r["rtol"])].append(r)
    for (problem, rtol), rs in groups.items():
        print(f"\n**{problem}, rtol {rtol:g}**\n")
        print("| grid | solver | its | set-up s | solve s | total s | apply ms | ORT ms | copies+gather % | true res |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rs:
            print(f"| {r['grid']} | {r['solver']} | {r['iterations']}{'' if r['converged'] else ' (NOT CONVERGED)'} | "
                  f"{r['setup_s']:.3f} | {r['solve_s']:.3f} | {r['total_s']:.3f} | {fmt(r['apply_ms'], '.2f')} | "
                  f"{fmt(r['ort_ms'], '.2f')} | {fmt(r['overhead_pct'], '.1f')} | {r['residual']:.1e} |")
    print("\n**Targets** (rtol 1e-8 unless stated)\n")
    print("| problem | grid | neural its (fcg2) / ICC its | best neural total s / ICC total s | / GAMG | / BoomerAMG |")
    print("|---|---|---|---|---|---|")
    for (problem, rtol), rs in groups.items():
        if rtol != 1e-8:
            continue
        for grid in dict.fromkeys(r["grid"] for r in rs):
            g = {r["solver"]: r for r in rs if r["grid"] == grid}
            if "fcg2+neural" not in g or "cg+icc" not in g:
                continue
            best = min((g[s] for s in g if "+neural" in s), key=lambda r: r["total_s"])
            ratio = lambda k: f"{best['total_s'] / g[k]['total_s']:.2f}" if k in g else ""
            print(f"| {problem} | {grid} | {g['fcg2+neural']['iterations']}/{g['cg+icc']['iterations']} = "
                  f"{g['fcg2+neural']['iterations'] / g['cg+icc']['iterations']:.2f} | {ratio('cg+icc')} ({best['solver']}) | "
                  f"{ratio('cg+gamg')} | {ratio('cg+boomeramg')} |")


if __name__ == "__main__":
    main(sys.argv[1])
