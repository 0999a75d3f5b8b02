"""The toy demo under the tiny preset writes its figures, animation and results."""

import json

from PIL import Image

from workshop import RunContext
from workshop.hardware import Hardware
from workshop_astro.demos.toy import toy


def test_toy_demo_tiny_writes_its_files(tmp_path):
    hw = Hardware("cpu", 1, "cpu", None, 2, None)
    ctx = RunContext(module="astro", demo="toy", preset="tiny", out=tmp_path, budget=None, hardware=hw, verbose=False)
    results = toy(ctx)
    for name in ("forward.gif", "score_field.png", "trajectories.png", "samples.png", "loss.png", "toy_results.json"):
        assert (tmp_path / name).stat().st_size > 1000, name
    gif = Image.open(tmp_path / "forward.gif")
    assert gif.n_frames >= 10
    saved = json.loads((tmp_path / "toy_results.json").read_text())
    assert saved["nfe"]["reverse_sde"] == 200
    assert saved["nfe"]["probability_flow_ode"] > 6
    sw = saved["sliced_wasserstein"]
    # with the exact score both samplers reach the two-draw floor (tiny sample counts: loose)
    assert sw["exact_score_reverse_sde"] < 2 * sw["two_data_draws"]
    assert sw["exact_score_probability_flow_ode"] < 2 * sw["two_data_draws"]
    assert results["train_steps"] == 300
