"""CG iterations of several gnn models against classical FSAI (the same factor structure, on tril(A) and on
tril(A^2); a model's pattern is in its metadata) and ICC on held-out members of the training families (seed 11;
training used seeds 0-5): the loss study, the pattern study and the cross-family check.

    .venv/bin/python benchmarks/gnn_models.py out/gnn-train/gnn-b.onnx out/gnn-train/gnn-d.onnx ...

Iteration counts only (rtol 1e-8, unpreconditioned norm); they do not depend on the machine's load.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CASES = [("plate", 0.02, 10.0), ("plate", 0.02, 1e4), ("inclusion", 0.06, 10.0), ("inclusion", 0.06, 1e4)]


def main(argv=None) -> int:
    from accel.cliargs import existing_file

    parser = argparse.ArgumentParser(description="CG iterations of gnn models against FSAI and ICC on held-out "
                                     "members of the training families.")
    parser.add_argument("models", nargs="+", type=existing_file, help="gnn .onnx models to compare")
    models = parser.parse_args(argv).models
    from accel.plugins.gnn.problems import diffusion
    from gnn_common import run

    print("| problem | unknowns | ICC | FSAI tril(A) | FSAI tril(A^2) | "
          + " | ".join(Path(m).stem for m in models) + " |")
    print("|---|---|---|---|---|" + "---|" * len(models))
    for family, h, contrast in CASES:
        p = diffusion(family, h, contrast, seed=11)
        its = [run(p.A, p.b, name).iterations for name in ("cg+icc", "cg+fsai", "cg+fsai2")]
        its += [run(p.A, p.b, "cg+gnn", model=m).iterations for m in models]
        print(f"| {family} contrast {contrast:g} | {p.A.getSize()[0]} | " + " | ".join(map(str, its)) + " |",
              flush=True)
        p.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
