/* An unmodified PETSc program: the 7-point Laplacian on the interior points of an nx x ny x nz DMDA (homogeneous
 * Dirichlet boundary eliminated; -n N sets all three, -nx/-ny/-nz one axis, any extent), solved with whatever
 * KSP/PC the options database names, e.g. PETSc's geometric multigrid on the DMDA (2^k + 1 points per axis):
 *   ./laplace3d -n 129 -ksp_type cg -ksp_norm_type unpreconditioned -pc_type mg -pc_mg_levels 6 \
 *       -pc_mg_galerkin both -mg_levels_ksp_type richardson -mg_levels_pc_type sor
 *
 * With accel's neural preconditioner, nothing here changes; only the command line does:
 *   ./laplace3d -n 32 -python -ksp_type fcg -ksp_fcg_mmax 2 -ksp_fcg_truncation_type standard \
 *       -ksp_norm_type unpreconditioned -pc_type python -pc_python_type accel.NeuralPC
 * Prints the iteration count, the true relative residual and the set-up and solve times (KSPSetUp, KSPSolve;
 * wall clock, seconds); exits non-zero if the solve did not converge.
 */
#include <petscdmda.h>
#include <petscksp.h>
#include <petsctime.h>

/* A pseudo-random right-hand side that depends only on the grid point, not on the number of ranks, so 1 and 2
 * ranks solve the same problem and must take the same number of iterations. */
static PetscErrorCode FillRightHandSide(DM da, Vec b)
{
  PetscInt       i, j, k, xs, ys, zs, xm, ym, zm;
  PetscScalar ***v;
  PetscReal      h;

  PetscFunctionBeginUser;
  PetscCall(DMDAGetCorners(da, &xs, &ys, &zs, &xm, &ym, &zm));
  PetscCall(DMDAVecGetArray(da, b, &v));
  for (k = zs; k < zs + zm; k++)
    for (j = ys; j < ys + ym; j++)
      for (i = xs; i < xs + xm; i++) {
        h          = PetscSinReal(12.9898 * i + 78.233 * j + 37.719 * k) * 43758.5453;
        v[k][j][i] = 2.0 * (h - PetscFloorReal(h)) - 1.0;
      }
  PetscCall(DMDAVecRestoreArray(da, b, &v));
  PetscFunctionReturn(0);
}

static PetscErrorCode AssembleLaplacian(DM da, Mat A)
{
  PetscInt    i, j, k, xs, ys, zs, xm, ym, zm, mx, my, mz, nc;
  MatStencil  row, col[7];
  PetscScalar v[7];

  PetscFunctionBeginUser;
  PetscCall(DMDAGetInfo(da, NULL, &mx, &my, &mz, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
  PetscCall(DMDAGetCorners(da, &xs, &ys, &zs, &xm, &ym, &zm));
  for (k = zs; k < zs + zm; k++)
    for (j = ys; j < ys + ym; j++)
      for (i = xs; i < xs + xm; i++) {
        row.i = i; row.j = j; row.k = k;
        nc = 0;
        col[nc] = row; v[nc++] = 6.0;
        if (i > 0)      { col[nc] = row; col[nc].i = i - 1; v[nc++] = -1.0; }
        if (i < mx - 1) { col[nc] = row; col[nc].i = i + 1; v[nc++] = -1.0; }
        if (j > 0)      { col[nc] = row; col[nc].j = j - 1; v[nc++] = -1.0; }
        if (j < my - 1) { col[nc] = row; col[nc].j = j + 1; v[nc++] = -1.0; }
        if (k > 0)      { col[nc] = row; col[nc].k = k - 1; v[nc++] = -1.0; }
        if (k < mz - 1) { col[nc] = row; col[nc].k = k + 1; v[nc++] = -1.0; }
        PetscCall(MatSetValuesStencil(A, 1, &row, nc, col, v, INSERT_VALUES));
      }
  PetscCall(MatAssemblyBegin(A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(A, MAT_FINAL_ASSEMBLY));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  DM                 da;
  Mat                A;
  Vec                x, b, r;
  KSP                ksp;
  PetscInt           n = 32, nx, ny, nz, its;
  PetscReal          rnorm, bnorm;
  PetscLogDouble     t0, t1, t2;
  KSPConvergedReason reason;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-n", &n, NULL));
  nx = ny = nz = n;
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-nx", &nx, NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-ny", &ny, NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-nz", &nz, NULL));
  PetscCall(DMDACreate3d(PETSC_COMM_WORLD, DM_BOUNDARY_NONE, DM_BOUNDARY_NONE, DM_BOUNDARY_NONE, DMDA_STENCIL_STAR,
                         nx, ny, nz, PETSC_DECIDE, PETSC_DECIDE, PETSC_DECIDE, 1, 1, NULL, NULL, NULL, &da));
  PetscCall(DMSetFromOptions(da));
  PetscCall(DMSetUp(da));
  PetscCall(DMCreateMatrix(da, &A));
  PetscCall(AssembleLaplacian(da, A));
  PetscCall(DMCreateGlobalVector(da, &b));
  PetscCall(VecDuplicate(b, &x));
  PetscCall(VecDuplicate(b, &r));
  PetscCall(FillRightHandSide(da, b));
  PetscCall(KSPCreate(PETSC_COMM_WORLD, &ksp));
  PetscCall(KSPSetDM(ksp, da));
  PetscCall(KSPSetDMActive(ksp, PETSC_FALSE));
  PetscCall(KSPSetOperators(ksp, A, A));
  PetscCall(KSPSetTolerances(ksp, 1e-8, PETSC_DEFAULT, PETSC_DEFAULT, 2000));
  PetscCall(KSPSetFromOptions(ksp));
  PetscCall(PetscTime(&t0));
  PetscCall(KSPSetUp(ksp));
  PetscCall(PetscTime(&t1));
  PetscCall(KSPSolve(ksp, b, x));
  PetscCall(PetscTime(&t2));
  PetscCall(KSPGetIterationNumber(ksp, &its));
  PetscCall(KSPGetConvergedReason(ksp, &reason));
  PetscCall(MatMult(A, x, r));
  PetscCall(VecAYPX(r, -1.0, b));
  PetscCall(VecNorm(r, NORM_2, &rnorm));
  PetscCall(VecNorm(b, NORM_2, &bnorm));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "iterations %" PetscInt_FMT " true_relative_residual %.3e reason %d setup_s %.4f solve_s %.4f\n",
                        its, (double)(rnorm / bnorm), (int)reason, (double)(t1 - t0), (double)(t2 - t1)));
  /* Destroy the KSP (and with it a Python PC context) before PetscFinalize. */
  PetscCall(KSPDestroy(&ksp));
  PetscCall(VecDestroy(&r));
  PetscCall(VecDestroy(&x));
  PetscCall(VecDestroy(&b));
  PetscCall(MatDestroy(&A));
  PetscCall(DMDestroy(&da));
  PetscCall(PetscFinalize());
  return reason > 0 ? 0 : 2;
}
