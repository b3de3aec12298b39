"""Engine rounds of the attack: each image moving to its next c as soon as its own solve stops
(`LBFGSAttack`), against lock-step c steps (`attack/reference/lockstep.py`, the schedule before rounds,
where every c step waits for its slowest image). One round is one call of the model (forward
and backward) over the images still at work, so on a GPU the rounds, not the evaluations,
set the time. Same model, images, targets and options for both (each c step's L-BFGS history
started afresh, as lock step must); then the attack's default, which keeps it across c steps.
Run side by side.

Then the default in the fixed-shape rounds of issue 29 (every problem in every round, masks, a
look every check_every rounds: the default on CUDA), on this CPU with the torch backend.

Also, per round of the attack at --ops-batch images (torch profiler, CPU), in compact and in
fixed-shape rounds: the torch operator calls (each one a kernel launch or more on a GPU) and the
operators that force a host synchronisation on a GPU (nonzero, item, ...).

    python bench/bench_rounds.py --count 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from intriguing_fast import LBFGSAttack, attack_engine, random_targets
from intriguing_fast.attack.reference.lockstep import lockstep_attack
from intriguing_fast.data import load_mnist

from subjects import quick_mlp

# aten operators that wait for the device when their tensors live on a GPU.
SYNCING = ("aten::nonzero", "aten::item", "aten::_local_scalar_dense", "aten::is_nonzero", "aten::unique")


def op_counts(attack: LBFGSAttack, model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> str:
    """Operator calls and syncing calls per round of one attack, by the part of the code that made them."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False, with_stack=False) as prof:
        res = attack(model, images, targets, progress=False)
    counts = Counter(e.name for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None)
    total = sum(counts.values())
    syncs = sum(counts[name] for name in SYNCING)
    rounds = res.rounds
    top = ", ".join(f"{name[6:]} {n / rounds:.1f}" for name, n in counts.most_common(8))
    return (
        f"{images.shape[0]} images, {rounds} rounds: {total / rounds:.0f} top-level torch operator calls and "
        f"{syncs / rounds:.1f} syncing calls per round (most frequent per round: {top})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=10000, help="MNIST test images (the correctly classified are attacked)")
    p.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations per solve (default: 100)")
    p.add_argument("--steps", type=int, default=7, help="c steps per image (default: 7, the attack's)")
    p.add_argument("--ops-batch", type=int, default=256, help="images of the operator count (default: 256)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--model-cache", default=".benchmarks/bench_attack_fc100-100-10_state.pt")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = quick_mlp(Path(args.model_cache), epochs=5).eval()
    test = load_mnist("test")
    images, labels = test.images[: args.count], test.labels[: args.count]
    with torch.no_grad():
        right = model(images).argmax(1) == labels
    images, labels = images[right], labels[right]
    targets = random_targets(labels, 10, seed=0)
    # One batch; each c step's history afresh and one temperature, as lock step must (the default
    # keeps the history: last row).
    attack = LBFGSAttack(
        steps=args.steps,
        batch_size=len(images),
        engine=attack_engine(args.max_iter),
        reuse_curvature=False,
        temperature=0.1,
    )
    print(
        f"784-100-100-10 sigmoid MLP, {len(images)} correctly classified of the first {args.count} MNIST test "
        f"images, random targets; {args.steps} c steps x {args.max_iter} iterations; {torch.get_num_threads()} "
        f"thread(s), backend {attack.engine.backend}"
    )
    start = time.perf_counter()
    res = attack(model, images, targets, progress=False)
    t_rounds = time.perf_counter() - start
    start = time.perf_counter()
    best, _, _, lock_rounds, active = lockstep_attack(model, images, targets, attack)
    t_lock = time.perf_counter() - start
    lock_dist = (best - images.flatten(1)[active]).norm(dim=1) / 28.0
    print(
        f"{'schedule':<10} {'rounds':>7} {'seconds':>8} {'success':>8} {'mean distortion':>16} {'evaluations/image':>18}"
    )
    print(f"{'lock step':<10} {lock_rounds:>7} {t_lock:>8.1f} {'':>8} {lock_dist.mean().item():>16.5f}")
    print(
        f"{'rounds':<10} {res.rounds:>7} {t_rounds:>8.1f} {res.success_rate:>8.4f} {res.mean_distortion:>16.5f} "
        f"{res.nfev.double().mean().item():>18.1f}"
    )
    print(f"rounds: {lock_rounds / res.rounds:.2f}x fewer; wall time {t_lock / t_rounds:.2f}x")
    kept_attack = dataclasses.replace(attack, reuse_curvature=True)
    start = time.perf_counter()
    kept = kept_attack(model, images, targets, progress=False)
    t_kept = time.perf_counter() - start
    print(
        f"{'rounds, curvature kept across c steps (the default)':<10} {kept.rounds:>7} {t_kept:>8.1f} "
        f"{kept.success_rate:>8.4f} {kept.mean_distortion:>16.5f} {kept.nfev.double().mean().item():>18.1f}"
    )
    # The fixed-shape rounds of issue 29 (the default on CUDA: every problem in every round, masks,
    # no host synchronisation but a look every check_every rounds), here on CPU with the torch
    # backend they need: what they cost where the compact rounds' syncs are free.
    fixed_attack = dataclasses.replace(kept_attack, engine=attack_engine(args.max_iter, rounds="fixed"))
    start = time.perf_counter()
    fixed = fixed_attack(model, images, targets, progress=False)
    t_fixed = time.perf_counter() - start
    print(
        f"{'fixed-shape rounds (torch backend, the default on CUDA)':<10} {fixed.rounds:>7} {t_fixed:>8.1f} "
        f"{fixed.success_rate:>8.4f} {fixed.mean_distortion:>16.5f} {fixed.nfev.double().mean().item():>18.1f}"
    )
    print(f"fixed-shape against compact rounds on this CPU: wall time {t_fixed / t_kept:.2f}x")
    print("compact rounds:", op_counts(kept_attack, model, images[: args.ops_batch], targets[: args.ops_batch]))
    print("fixed-shape rounds:", op_counts(fixed_attack, model, images[: args.ops_batch], targets[: args.ops_batch]))


if __name__ == "__main__":
    main()
