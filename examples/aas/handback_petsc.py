"""Use a trained AAS PINN (ONNX) as the initial guess of a DOLFINx/PETSc CG solve; works under mpirun.

    .venv/bin/python examples/aas/handback_petsc.py plugins/aas/models/peak2d_aas.onnx --n 128 --pc none
    mpirun -n 2 .venv/bin/python examples/aas/handback_petsc.py plugins/aas/models/peak2d_aas.onnx --n 128
"""
import argparse
import json

from mpi4py import MPI

from accel.plugins.aas.handback import handback

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--n", type=int, default=128, help="cells per side of the P1 triangle mesh")
p.add_argument("--pc", default="none")
p.add_argument("--rtol", type=float, default=1e-8)
a = p.parse_args()
r = handback(a.model, n=a.n, rtol=a.rtol, pc=a.pc)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps(dict(r.__dict__, saved=r.saved, ranks=MPI.COMM_WORLD.size)))
