"""How fast does the bundled generator sample and train, and how well does it use the CPU?

    python -m bench.generate_speed [--config NAME] [--batch 16] [--steps 25] [--threads 2]

Measures, in one run with the same threads: seconds per clip when sampling a batch (DDIM, the
default steps, classifier-free guidance on), training steps per second (batch 8), the FLOPs of
sampling (counted with torch.utils.flop_counter) divided by its wall time, and the FLOP/s of a
dense fp32 torch.matmul, the baseline that fraction is taken of.

torch's flop counter has formulas for the CUDA attention kernels but not for the CPU one
(``aten._scaled_dot_product_flash_attention_for_cpu``), so it would count attention, about half of
this model's work, as zero; the benchmark registers torch's own SDPA formula for it first.
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from bench.timing import median_seconds

flop_counter.flop_registry.setdefault(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu,
                                      flop_counter.flop_registry[torch.ops.aten._scaled_dot_product_flash_attention])


def matmul_flops_per_s(n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / median_seconds(lambda: a @ b, repeats, warmup=3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.generate_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="bundled config (default: the default one)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from clipproof.generator.generate import load_generator, sample_clips
    from clipproof.generator.pipeline import training_scheduler
    from clipproof.generator.settings import TrainSettings
    from clipproof.generator.train import _loss, training_draws

    gen = load_generator(args.config)
    cfg = gen.config
    model = gen.pipeline.transformer
    def some_classes(n: int) -> list[str]:
        return [model.class_names[i % len(model.class_names)] for i in range(n)]
    classes = some_classes(args.batch)
    seeds = list(range(args.batch))

    # FLOPs of one sampling call, counted on a one-step call and scaled (every step is alike).
    with FlopCounterMode(display=False) as counter:
        sample_clips(gen, classes, seeds, steps=1)
    flops = counter.get_total_flops() * args.steps
    sample_clips(gen, classes[:2], seeds[:2], steps=2)      # warm-up
    sample_s = median_seconds(lambda: sample_clips(gen, classes, seeds, steps=args.steps), args.runs)
    matmul = matmul_flops_per_s()

    # Training steps per second on random clips of the right shape (a copy of the model).
    train_model = type(model).from_config(model.config)
    train_model.load_state_dict(model.state_dict())
    train_model.train()
    opt = torch.optim.AdamW(train_model.parameters(), lr=1e-4)
    sched = training_scheduler(cfg)
    x0 = torch.rand(8, cfg.frames, 3, cfg.size, cfg.size) * 2 - 1
    draws = training_draws(cfg, TrainSettings(), 0, len(x0))

    def train_step():
        loss = _loss(train_model, train_model, sched, x0, some_classes(8), draws)
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = median_seconds(train_step, 5, warmup=1)

    achieved = flops / sample_s
    print(f"\ngenerate speed: {gen.model_id} ({cfg.frames}x{cfg.size}x{cfg.size}, {cfg.layout}), batch {args.batch}, "
          f"DDIM {args.steps} steps, guidance on, {args.threads} threads\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| sampling: seconds per clip | {sample_s / args.batch:.3f} |")
    print(f"| sampling: seconds per batch of {args.batch} | {sample_s:.2f} |")
    print(f"| training: steps per second (batch 8) | {1 / train_s:.2f} |")
    print(f"| sampling FLOPs (flop_counter) | {flops / 1e9:.1f} G |")
    print(f"| sampling achieved FLOP/s | {achieved / 1e9:.1f} G |")
    print(f"| dense fp32 matmul FLOP/s (1024^3, same threads) | {matmul / 1e9:.1f} G |")
    print(f"| achieved / matmul | {achieved / matmul:.0%} |")
    print(f"\ntarget >= 35% of matmul: {'met' if achieved / matmul >= 0.35 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
