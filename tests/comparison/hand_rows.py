"""Hand-made rows of a small sweep: failed, stopped and NaN trials among them."""

import math

from geosweep.comparison.rows import Row


def row(representation, lr, seed, status="finished", **metrics) -> Row:
    return Row(
        axes={"representation": representation, "optimizer.lr": lr, "seed": seed, "epochs": 3},
        status=status,
        metrics=metrics,
        seconds=10.0,
        error="boom" if status == "failed" else "",
    )


ROWS = [
    row("{name: raw}", 1e-2, 0, val_acc=0.9, **{"invariance/max_logit_diff": 3.0}),
    row("{name: raw}", 1e-2, 1, val_acc=0.8, **{"invariance/max_logit_diff": 2.0}),
    row("{name: tinv_mds}", 1e-4, 0, val_acc=0.7, **{"invariance/max_logit_diff": 1e-6}),
    row("{name: fa}", 1e-3, 0, status="stopped early", val_acc=0.5, **{"invariance/max_logit_diff": 1e-7}),
    row("{name: fa}", 1e-3, 1, status="failed"),  # raised before its first epoch: no metrics at all
    row("{name: tinv_mds}", 1e-4, 1, status="failed", val_acc=math.nan),  # diverged
]
