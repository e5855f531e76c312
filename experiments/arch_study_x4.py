r"""Architecture study at x4: RDN, RRDBNet, SRVGGNetCompact, EDSR, RCAN, SwinIR-light and HAT at CPU-trainable
sizes, L1, on T91+BSD200, two seeds.

  python -m experiments.launch experiments/arch_study_x4.py --root=runs/arch_study_x4 --data_dir=../shared/data \
      --evaluate=Set5,Set14,B100 --eval_metrics=psnr,ssim,lpips --eval_step=latest
  python -m experiments.report runs/arch_study_x4 --data_dir=../shared/data
  python -m experiments.arch_report runs/arch_study_x4 --bench=experiments/results/arch_bench_2026-12-02.jsonl \
      --out=experiments/results/arch_study_x4

  python -m experiments.archive_runs --runs=runs/arch_study_x4 --to=experiments/results/arch_study_x4/runs

Finished members' small files (config.json, launch.json, validation.json, eval/summary.json, eval/table.md) are
kept in experiments/results/arch_study_x4/runs/ (the last command) so the study goes on on another machine: copy
them into the root first (``mkdir -p runs/arch_study_x4 && cp -r experiments/results/arch_study_x4/runs/*
runs/arch_study_x4/``; the launcher skips members whose launch.json says done) and arch_report reads that folder
directly.

Budget and data: the x4 loss study's (configs/rdn_291_x4.py: 16x16 LR / 64x64 HR patches, batch 16, Adam 1e-3
cosine, 3000 steps from scratch, L1, validation on Set5). Sizes: each picked so that a train step takes 0.19-0.33
s on this 2-core CPU (3000 steps in 9-17 minutes; measured with experiments/benchmarks/arch_bench.py, in
docs/benchmarks.md "Architectures"), so the members get about the same compute; SRVGGNetCompact at this size is
realesr-general-x4v3's network. At these sizes the study compares the designs at a small budget, not the papers'
networks (10-100x larger, trained ~100x longer).

One recipe change, SRVGGNetCompact's (RECIPES): Adam 5e-4 instead of 1e-3. A plain stack of 32 convs with no
skip is not stable at 1e-3 (measured: its seed-0 member's loss went from 0.042 to 3e4 at step ~250, right after
the warm-up reached 1e-3, and was still at 0.7 at step 1800, Set5 8.5 dB at step 1000); every other member
trains at 1e-3.
"""

import importlib

BASE_CONFIG = "rdn_291_x4"

ARCHITECTURES = {  # label -> config.model fields (scale 4 from the base).
    "RDN (4x6, G24, G0 48)": {"name": "rdn", "num_blocks": 4, "num_layers": 6, "growth": 24, "features": 48},
    "RRDBNet (2 RRDBs, 32 / 16)": {"name": "rrdbnet", "num_blocks": 2, "features": 32, "growth": 16},
    "SRVGGNetCompact (32 convs, 64)": {"name": "srvgg", "num_blocks": 32, "features": 64},
    "EDSR (16 blocks, 44)": {"name": "edsr", "num_blocks": 16, "features": 44},
    "RCAN (4 groups x 6, 32)": {"name": "rcan", "num_groups": 4, "num_blocks": 6, "features": 32, "squeeze": 8},
    "SwinIR-light (3 x 4 layers, 36)": {"name": "swinir", "num_blocks": 3, "num_layers": 4, "features": 36,
                                        "num_heads": 3, "window_size": 8, "upsampler": "pixelshuffledirect"},
    "HAT (1 x 4 blocks, 30)": {"name": "hat", "num_blocks": 1, "num_layers": 4, "features": 30, "num_heads": 3,
                               "window_size": 8, "compress_ratio": 3, "squeeze": 6},
}


RECIPES = {"srvgg": {"train.learning_rate": 5e-4}}  # model.name -> overrides of the base recipe (docstring).


def config_for(name: str):
  """The study's config of the member whose model.name is ``name`` (the benchmarks measure what it trains)."""
  config = importlib.import_module(f"sr_jax.configs.{BASE_CONFIG}").get_config()
  config.model.update(**next(m for m in ARCHITECTURES.values() if m["name"] == name))
  config.update_from_flattened_dict(RECIPES.get(name, {}))
  return config


# Run order (the report lists the members in it): the attention models early, so their trained weights settle
# the tiling overlap while the rest train.
ORDER = ("rdn", "rrdbnet", "swinir", "hat", "rcan", "edsr", "srvgg")


def sweep(add):
  for seed in (0, 1):
    for label, model in sorted(ARCHITECTURES.items(), key=lambda kv: ORDER.index(kv[1]["name"])):
      add(label=label, name=f"{model['name']}_s{seed}", seed=seed, **{f"model.{k}": v for k, v in model.items()},
          **RECIPES.get(model["name"], {}))
