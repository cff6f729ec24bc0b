"""Sampling, packaged as a diffusers ``DiffusionPipeline`` (``save_pretrained`` /
``from_pretrained`` on a local folder work as diffusers users expect).

The noise schedule and the samplers are diffusers' schedulers: the model is trained against a
``DDPMScheduler`` (v-prediction) and samples with DDIM or DPM-Solver++ built from the same
config; the step count is a parameter. Known frames (``i2v``'s first frame, ``extend``'s
context) are inputs, and they are returned as given: kept, never regenerated.
"""
from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler

from clipproof.errors import UsageError
from clipproof.generator.model import VideoDiT

SAMPLERS = {
    "ddim": lambda cfg: DDIMScheduler.from_config(cfg, timestep_spacing="trailing"),
    "dpm++": lambda cfg: DPMSolverMultistepScheduler.from_config(cfg, algorithm_type="dpmsolver++",
                                                                 timestep_spacing="trailing"),
}


def training_scheduler(config) -> DDPMScheduler:
    """The forward process the model learns to invert (cosine schedule, v-prediction)."""
    return DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule="squaredcos_cap_v2",
                         prediction_type=config.prediction, clip_sample=False)


class ClipproofVideoPipeline(DiffusionPipeline):
    transformer: VideoDiT
    scheduler: DDPMScheduler

    # Rows per transformer call while sampling. On the CPU, small chunks keep each layer's
    # activations in cache; the element-wise half of the work is memory-bound, so 4 rows run
    # ~20 % faster per clip than 32 at once (measured on wan-xs, bench.generate_speed).
    micro_batch = 4

    def __init__(self, transformer: VideoDiT, scheduler: DDPMScheduler):
        super().__init__()
        self.register_modules(transformer=transformer, scheduler=scheduler)

    @torch.no_grad()
    def __call__(self, classes: list[str | None], *, known: torch.Tensor | None = None,
                 known_frames: int = 0, steps: int = 25, sampler: str = "ddim", guidance: float = 2.0,
                 generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """Sample ``len(classes)`` clips; returns (B, 3, T, H, W) in [-1, 1].

        ``known``: (B, 3, known_frames, H, W) frames the clip starts with (i2v: 1, extend: k).
        ``guidance``: classifier-free guidance scale on the class (1 = off).
        """
        if sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {sampler!r}; choose {', '.join(SAMPLERS)}")
        if steps < 1:
            raise UsageError("steps must be at least 1")
        cfg = self.transformer.config
        b, t, s = len(classes), cfg.frames, cfg.size
        device, dtype = self.transformer.device, self.transformer.dtype
        # A fresh scheduler per call: its state (timesteps, solver history) is this call's alone.
        scheduler = SAMPLERS[sampler](self.scheduler.config)
        scheduler.set_timesteps(steps, device=device)

        ids = torch.tensor([self.transformer.class_index(c) for c in classes], device=device)
        known_full = torch.zeros(b, 3, t, s, s, device=device, dtype=dtype)
        mask = torch.zeros(b, 1, t, s, s, device=device, dtype=dtype)
        if known is not None and known_frames:
            known_full[:, :, :known_frames] = known[:, :, :known_frames].to(device, dtype)
            mask[:, :, :known_frames] = 1
        # One generator per clip makes each clip a function of its own seed, whatever the batch.
        gens = generator if isinstance(generator, list) else [generator] * b
        x = torch.stack([torch.randn(3, t, s, s, generator=g, dtype=torch.float32) for g in gens]).to(device, dtype)
        x = x * scheduler.init_noise_sigma
        guided = guidance != 1.0
        null = torch.full_like(ids, self.transformer.null_class)
        for step_t in self.progress_bar(scheduler.timesteps):
            inp = scheduler.scale_model_input(x, step_t)
            ts = torch.full((b,), int(step_t), device=device, dtype=torch.long)
            if guided:
                pred = self._denoise(torch.cat([inp, inp]), torch.cat([ts, ts]), torch.cat([ids, null]),
                                     torch.cat([known_full, known_full]), torch.cat([mask, mask]))
                cond, uncond = pred.chunk(2)
                pred = uncond + guidance * (cond - uncond)
            else:
                pred = self._denoise(inp, ts, ids, known_full, mask)
            x = scheduler.step(pred, step_t, x).prev_sample   # DDIM (eta 0) and DPM++ draw no noise
        return torch.where(mask.bool().expand_as(x), known_full, x).clamp(-1, 1)

    def _denoise(self, *inputs: torch.Tensor) -> torch.Tensor:
        n = self.micro_batch if self.device.type == "cpu" else inputs[0].shape[0]
        chunks = zip(*(t.split(n) for t in inputs))
        return torch.cat([self.transformer(*chunk) for chunk in chunks])
