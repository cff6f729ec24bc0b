"""Which spatiotemporal network for the detector? The measurements behind the choice.

    python -m bench.detector_models [--batch 16] [--frames 16] [--size 32] [--threads 2]

For each candidate at the corpus' clip shape, random init: parameters, and the median time of a
training step (forward + backward, batch of ``--batch``) and of inference on one 16-frame
segment. Candidates: the registry's models (timm ResNet-10-T per frame + attention over time,
and the frame-only baseline) and torchvision's video networks R(2+1)D-18 and MC3-18 with a
one-logit head. Times are also given relative to st-attention (the bundled st-attention-npr is
the same network on residuals), measured in the same run with the same threads.
"""
from __future__ import annotations

import argparse
import sys

import torch
from torch import nn

from bench.timing import median_seconds


def _torchvision(name: str) -> nn.Module:
    from torchvision.models import video
    model = getattr(video, name)(weights=None)
    model.fc = nn.Linear(model.fc.in_features, 1)
    return model


class _ChannelsFirst(nn.Module):
    """torchvision's video networks take (B, C, T, H, W); the corpus gives (B, T, C, H, W)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.inner(x.transpose(1, 2)).squeeze(1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.detector_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from clipproof.detector.registry import create_model

    candidates = {
        "st-attention (timm resnet10t + attention over time)": lambda: create_model("st-attention", frames=args.frames),
        "frame-avg (the same backbone, frames averaged)": lambda: create_model("frame-avg", frames=args.frames),
        "torchvision r2plus1d_18": lambda: _ChannelsFirst(_torchvision("r2plus1d_18")),
        "torchvision mc3_18": lambda: _ChannelsFirst(_torchvision("mc3_18")),
    }
    x = torch.rand(args.batch, args.frames, 3, args.size, args.size) * 2 - 1
    y = torch.randint(0, 2, (args.batch,)).float()
    rows = []
    for name, build in candidates.items():
        torch.manual_seed(0)
        model = build()
        params = sum(p.numel() for p in model.parameters())
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            loss = nn.functional.binary_cross_entropy_with_logits(model(x)["logits"], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.train()
        train_s = median_seconds(step, args.runs, warmup=1)
        model.eval()
        with torch.inference_mode():
            infer_s = median_seconds(lambda: model(x[:1]), args.runs * 3, warmup=1)
        rows.append((name, params, train_s, infer_s))

    print(f"\ndetector candidates: clips {args.frames}x{args.size}x{args.size}, batch {args.batch}, "
          f"{args.threads} threads, median of {args.runs}\n")
    print("| model | parameters | train step s | vs st-attention | inference s / segment |")
    print("|---|---:|---:|---:|---:|")
    ref = rows[0][2]
    for name, params, train_s, infer_s in rows:
        print(f"| {name} | {params / 1e6:.2f} M | {train_s:.3f} | {train_s / ref:.2f}x | {infer_s:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
