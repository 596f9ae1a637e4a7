"""Render benchmarks/dcdm_solvers.py's JSON as the markdown tables of docs/benchmarks/dcdm.md.

    .venv/bin/python benchmarks/dcdm_report.py docs/results/dcdm_solvers.json
    .venv/bin/python benchmarks/dcdm_report.py --sizes out/sizes3d.json    # the any-size targets table
"""
from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict

from accel.cliargs import existing_file


def fmt(v, spec):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def main(path):
    data = json.load(open(path))
    rows = data["rows"]
    print(f"Machine: {data['machine']}; PETSc {data['petsc']}; date {data['date']}; ranks {data.get('ranks', 1)}; "
          f"load average at start/end {fmt((data.get('load_start') or [None])[0], '.1f')}/"
          f"{fmt((data.get('load_end') or [None])[0], '.1f')}.\n")
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


def _main():
    parser = argparse.ArgumentParser(description="Render benchmarks/dcdm_solvers.py's JSON as markdown tables.")
    parser.add_argument("json", type=existing_file, help="a JSON file written by benchmarks/dcdm_solvers.py")
    parser.add_argument("--sizes", action="store_true", help="the any-size targets table instead of the full tables")
    args = parser.parse_args()
    try:
        data = json.load(open(args.json))
        data["rows"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        parser.error(f"{args.json} is not a JSON file from benchmarks/dcdm_solvers.py (no 'rows')")
    (sizes if args.sizes else main)(args.json)


def sizes(path):
    """Any-size targets: neural iterations against the best power-of-two grid's, total time against ICC and PCMG."""
    data = json.load(open(path))
    rows = [r for r in data["rows"] if r["rtol"] == 1e-8]
    print("| problem | grid | fcg2+neural its (/ best 2^k grid) | neural-sor its | best neural total s | / ICC | / PCMG (best) |")
    print("|---|---|---|---|---|---|---|")
    for problem in dict.fromkeys(r["problem"] for r in rows):
        rs = [r for r in rows if r["problem"] == problem]
        g = defaultdict(dict)
        for r in rs:
            g[r["grid"]][r["solver"]] = r
        pow2 = [v["fcg2+neural"]["iterations"] for k, v in g.items() if "fcg2+neural" in v and
                all(int(n) & (int(n) - 1) == 0 for n in k.split("x"))]
        best2 = min(pow2) if pow2 else None
        for grid, v in g.items():
            neural = [r for s, r in v.items() if "+neural" in s]
            if not neural:
                continue
            best = min(neural, key=lambda r: r["total_s"])
            mg = [v[s] for s in ("cg+mg-sor", "cg+mg-cheby") if s in v]
            its = v.get("fcg2+neural", {}).get("iterations")
            ratio = f" ({its / best2:.2f})" if its and best2 else ""
            print(f"| {problem} | {grid} | {its}{ratio} | {v.get('fcg2+neural-sor', {}).get('iterations', '')} | "
                  f"{best['total_s']:.3f} ({best['solver']}) | "
                  f"{best['total_s'] / v['cg+icc']['total_s']:.2f} | "
                  f"{(best['total_s'] / min(r['total_s'] for r in mg)) if mg else float('nan'):.2f} |")


if __name__ == "__main__":
    _main()
