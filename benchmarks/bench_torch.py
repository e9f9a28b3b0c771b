"""Per-sample Adam: the theorybox engine against a PyTorch per-step loop.

Both run the same job side by side in one process: per-sample (cyclic) Adam,
N = 10, d = 50, float64, eps = 0, no bias correction, eta_t = 0.1 (t + 1)^-0.5.
The figure reported is the ratio of wall times (PyTorch / engine), which is what
survives a shared, noisy machine. PyTorch is not a dependency: install it with
``pip install torch==2.13.0``; without it the script says so and exits 0.

Run: ``python benchmarks/bench_torch.py [--steps 100000]``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from theorybox.data.generators import gaussian
from theorybox.engine import run
from theorybox.optimizers import RunConfig, Schedule


def torch_loop(Z, steps, eta0=0.1, t0=1.0, a=0.5, b1=0.9, b2=0.999):
    """A researcher's usual loop: one sample per step, torch.optim.Adam."""
    import torch

    torch.set_num_threads(1)
    z = torch.tensor(Z, dtype=torch.float64)
    w = torch.zeros(Z.shape[1], dtype=torch.float64, requires_grad=True)
    # torch's Adam always bias-corrects; eps=0 and bias correction off are not
    # options, so the loop differs from the engine's rule only in those factors.
    opt = torch.optim.Adam([w], lr=eta0, betas=(b1, b2), eps=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (t + t0) ** (-a))
    n = Z.shape[0]
    for t in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(z[t % n] @ w))
        loss.backward()
        opt.step()
        sched.step()
    return w.detach().numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args(argv)
    data = gaussian(n=10, d=50, seed=0)
    Z = np.ascontiguousarray(data.Z)
    config = RunConfig("adam-ps", steps=args.steps, schedule=Schedule(0.1, 1.0, 0.5))

    # Compile once outside the timing, then time the engine.
    run(Z, RunConfig("adam-ps", steps=10), checkpoints=[10])
    start = time.perf_counter()
    run(Z, config, checkpoints=[args.steps])
    engine = time.perf_counter() - start
    print(f"engine:  {args.steps} steps in {engine:.3f} s "
          f"({1e6 * engine / args.steps:.3f} us/step)")

    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed (pip install torch==2.13.0): skipped")
        return 0
    torch_steps = min(args.steps, 20_000)
    start = time.perf_counter()
    torch_loop(Z, torch_steps)
    per_step = (time.perf_counter() - start) / torch_steps
    print(f"pytorch: {torch_steps} steps, {1e6 * per_step:.1f} us/step "
          f"(extrapolated to {args.steps} steps: {per_step * args.steps:.1f} s)")
    print(f"ratio pytorch/engine per step: {per_step * args.steps / engine:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
