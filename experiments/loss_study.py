"""Loss study: the same small RDN on T91+BSD200 (x2) with each pixel loss, validated on Set5.

  python -m experiments.launch experiments/loss_study.py --root=runs/loss_study --evaluate=Set5,Set14,B100
  python -m experiments.report runs/loss_study

Budget: 4000 steps each (about 10 minutes per member on a 2-core CPU). Perceptual and adversarial members
join when those losses exist (issue #5).
"""

BASE_CONFIG = "configs/rdn_291_x2.py"


def sweep(add):
  add(**{"loss.l1": 1.0, "loss.mse": 0.0})
  add(**{"loss.l1": 0.0, "loss.mse": 1.0})
