"""CG iterations from a zero guess and from the PINN's ONNX prediction at the DOFs (DOLFINx P1, rtol 1e-8).

    .venv/bin/python benchmarks/aas_handback.py plugins/aas/models/layer2d_pinn.onnx --n 64,128,256 --pc none,jacobi
"""
import argparse
import sys

from accel.plugins.aas.handback import handback


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("models", nargs="+")
    p.add_argument("--n", default="64,128,256")
    p.add_argument("--pc", default="none,jacobi")
    p.add_argument("--rtol", type=float, default=1e-8)
    a = p.parse_args(argv)
    print("| model | mesh | dofs | pc | its (zero guess) | its (PINN guess) | saved | guess error vs u_h | "
          "solve s zero / guess | ONNX eval s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in a.models:
        for n in [int(v) for v in a.n.split(",")]:
            for pc in a.pc.split(","):
                r = handback(m, n=n, rtol=a.rtol, pc=pc)
                print(f"| {m.split('/')[-1]} | {n}x{n} | {r.dofs} | {pc} | {r.its_zero} | {r.its_guess} | {r.saved} | "
                      f"{r.guess_rel_err:.3g} | {r.solve_s_zero:.3f} / {r.solve_s_guess:.3f} | {r.eval_s:.3f} |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
