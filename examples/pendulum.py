"""A double pendulum whose equations of motion come from differentiating its Lagrangian.

Only the Lagrangian L(q1, q2, dq1, dq2) is written by hand (angles from the downward vertical,
point masses on massless rods). The Euler-Lagrange equations d/dt(dL/dqdot) = dL/dq expand to

    M(q, qdot) qddot = dL/dq - C(q, qdot) qdot,   M = d2L/dqdot2,   C = d2L/(dqdot dq),

so symgrad supplies dL/dq (`grad`), and M and C as blocks of one 4x4 `hessian`. The energy
E = qdot . dL/dqdot - L comes from `value_and_grad`, evaluated on the whole trajectory at once
(symgrad's programs run elementwise on arrays). The accelerations are compared with the
textbook closed form, and the energy drift of a tightly integrated trajectory is printed.

    python examples/pendulum.py [seconds]
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from symgrad import grad, hessian, jacobian, value_and_grad

M1, M2 = 1.0, 2.0  # masses (kg)
L1, L2 = 1.0, 1.5  # rod lengths (m)
G = 9.81  # gravity (m/s^2)

Real = float | np.ndarray  # these functions run on floats and on whole trajectories


def lagrangian(q1: Real, q2: Real, dq1: Real, dq2: Real) -> Any:
    kinetic = (
        0.5 * (M1 + M2) * L1**2 * dq1**2
        + 0.5 * M2 * L2**2 * dq2**2
        + M2 * L1 * L2 * dq1 * dq2 * np.cos(q1 - q2)
    )
    potential = -(M1 + M2) * G * L1 * np.cos(q1) - M2 * G * L2 * np.cos(q2)
    return kinetic - potential


STATE = ("q1", "q2", "dq1", "dq2")
L_and_grad = value_and_grad(lagrangian, wrt=STATE)  # (L, (dL/dq1, dL/dq2, dL/ddq1, dL/ddq2))
L_hessian = hessian(lagrangian, wrt=STATE)  # 4x4 over (q1, q2, dq1, dq2)


def accelerations(q1: float, q2: float, dq1: float, dq2: float) -> np.ndarray:
    """qddot from the Euler-Lagrange equations, every derivative from symgrad."""
    _, (dLdq1, dLdq2, _, _) = L_and_grad(q1, q2, dq1, dq2)
    H = L_hessian(q1, q2, dq1, dq2)
    mass = H[2:, 2:]  # d2L / dqdot_i dqdot_j
    mixed = H[2:, :2]  # d2L / dqdot_i dq_j
    force = np.array([dLdq1, dLdq2]) - mixed @ np.array([dq1, dq2])
    return np.linalg.solve(mass, force)


def accelerations_by_hand(q1: float, q2: float, dq1: float, dq2: float) -> np.ndarray:
    """The closed form found in textbooks for the same double pendulum."""
    delta = q1 - q2
    den = 2 * M1 + M2 - M2 * np.cos(2 * delta)
    a1 = (
        -G * (2 * M1 + M2) * np.sin(q1)
        - M2 * G * np.sin(q1 - 2 * q2)
        - 2 * np.sin(delta) * M2 * (dq2**2 * L2 + dq1**2 * L1 * np.cos(delta))
    ) / (L1 * den)
    a2 = (
        2
        * np.sin(delta)
        * (dq1**2 * L1 * (M1 + M2) + G * (M1 + M2) * np.cos(q1) + dq2**2 * L2 * M2 * np.cos(delta))
    ) / (L2 * den)
    return np.array([a1, a2])


def energy(q1: Real, q2: Real, dq1: Real, dq2: Real) -> Any:
    """E = sum(qdot * dL/dqdot) - L; works on floats and on whole trajectories (arrays)."""
    L, (_, _, p1, p2) = L_and_grad(q1, q2, dq1, dq2)
    return dq1 * p1 + dq2 * p2 - L


def energy_by_hand(q1: Real, q2: Real, dq1: Real, dq2: Real) -> Any:
    kinetic = 0.5 * (M1 + M2) * L1**2 * dq1**2 + 0.5 * M2 * L2**2 * dq2**2
    kinetic = kinetic + M2 * L1 * L2 * dq1 * dq2 * np.cos(q1 - q2)
    return kinetic - (M1 + M2) * G * L1 * np.cos(q1) - M2 * G * L2 * np.cos(q2)


def rhs(t: float, y: np.ndarray) -> np.ndarray:
    q1, q2, dq1, dq2 = (float(v) for v in y)
    return np.array([dq1, dq2, *accelerations(q1, q2, dq1, dq2)])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 10.0

    state = (2.0, 2.5, 0.5, -1.0)  # q1, q2 (rad), dq1, dq2 (rad/s): a large, chaotic swing
    ours, theirs = accelerations(*state), accelerations_by_hand(*state)
    print("state (q1, q2, dq1, dq2):", state)
    print("accelerations (symgrad):", ours.tolist())
    print("accelerations (by hand):", theirs.tolist())
    print(f"max acceleration difference: {np.max(np.abs(ours - theirs)):.3e}")

    # The mixed block two ways: a block of the 4x4 Hessian, and the jacobian of a grad.
    mixed_block = L_hessian(*state)[2:, :2]
    mixed_jac = jacobian(grad(lagrangian, wrt=("dq1", "dq2")), wrt=("q1", "q2"))(*state)
    print(f"max |hessian block - jacobian(grad)|: {np.max(np.abs(mixed_block - mixed_jac)):.3e}")

    solution = solve_ivp(
        rhs, (0.0, seconds), state, method="DOP853", rtol=1e-11, atol=1e-11, dense_output=True
    )
    t = np.linspace(0.0, seconds, 2001)
    q1, q2, dq1, dq2 = solution.sol(t)
    E = energy(q1, q2, dq1, dq2)  # one call on the whole trajectory
    E0 = energy(*state)
    drift = float(np.max(np.abs(E - E0)) / abs(E0))
    print(f"integrated {seconds:g} s: status={solution.status} rhs_evaluations={solution.nfev}")
    print(f"final state: {[round(float(v), 6) for v in solution.y[:, -1]]}")
    print(f"energy E0 = {E0:.12f} J (by hand: {energy_by_hand(*state):.12f} J)")
    print(
        f"max energy difference symgrad vs by hand on trajectory: {np.max(np.abs(E - energy_by_hand(q1, q2, dq1, dq2))):.3e}"
    )
    print(f"relative energy drift: {drift:.3e}")


if __name__ == "__main__":
    main()
