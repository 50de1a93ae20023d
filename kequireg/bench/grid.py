"""Grid throughput: a tiny study grid by the sequential executor vs the local executor, in runs/hour.

Both contenders are the user's command, ``kequireg experiment`` in a subprocess, timed wall
clock from start to the aggregated table, on the same synthetic store and grid (baseline and
EquiReg at 50% and 100% labels, ``label_seeds`` label seeds, the tiny model, ``max_steps``
steps each). ``sequential`` uses every core for its one run at a time (the default);
``local --parallel W`` runs W at once with cores / W threads each. The rounds alternate the two
(sequential first), and the machine's load average is read before and after, since the
numbers mean little on a machine shared with other work. On GPUs the local executor gives each
worker its own GPU, and runs/hour grows with the GPU count: this benchmark measures the CPU case.

Example:
    >>> result = run_grid_bench(workers=2, label_seeds=(0,), max_steps=4)     # doctest: +SKIP
    >>> result["speedup"] > 0                                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kequireg.bench.timing import stderr_log
from kequireg.data.preprocess import PreprocessParams, preprocess_dataset
from kequireg.data.synth import synthesize
from kequireg.experiments.experiment_settings import ExperimentSettings
from kequireg.experiments.plan import plan_grid
from kequireg.experiments.worker_env import cpu_count
from kequireg.training.config import TrainConfig

_log = stderr_log("kequireg bench grid: ")


def _store(root: Path, cases: int) -> Path:
    synthesize(root / "raw", preset="demo", cases=cases, seed=11)
    report = preprocess_dataset(root / "raw", root / "grid.h5", params=PreprocessParams(n4=False), workers=1,
                                val=0.34, seed=0)
    return report.store_path


def _time_command(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def run_grid_bench(workers: int = 2, label_seeds=(0, 1), max_steps: int = 20, steps_per_epoch: int = 10,
                   cases: int = 6, repeats: int = 1, jit: str = "off", echo=print) -> dict:
    """Time the grid under both executors and print runs/hour, the speed-up and the machine's load.

    Args:
        workers: int. Local workers (``--parallel``). Defaults to 2.
        label_seeds: label seeds at 50% (the grid has 2 × (len + 1) runs). Defaults to (0, 1): 6 runs.
        max_steps, steps_per_epoch: int. Each run's steps and validation period. Defaults to 20, 10.
        cases: int. Synthetic cases of the store. Defaults to 6.
        repeats: int. Rounds of (sequential, local). Defaults to 1.
        jit: str. ``KEQUIREG_JIT_COMPILE`` of the runs. Defaults to ``"off"`` (XLA compilation would
            dominate runs this short).
        echo: callable printing the result lines.

    Returns:
        dict: runs, cores, load averages, seconds per round and runs/hour of each executor, speedup.
    """
    seeds = ",".join(str(s) for s in label_seeds)
    runs = len(plan_grid(ExperimentSettings(template=TrainConfig(data="x.h5"), fractions=(0.5, 1.0),
                                            label_seeds=tuple(label_seeds), repeats=1)))
    env = {**os.environ, "KEQUIREG_JIT_COMPILE": jit}
    seconds: dict[str, list[float]] = {"sequential": [], f"local x{workers}": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kequireg-bench-grid-") as tmp:
        root = Path(tmp)
        store = _store(root, cases)
        for round_ in range(repeats):
            for name, extra in (("sequential", []), (f"local x{workers}", ["--executor", "local", "--parallel",
                                                                           str(workers)])):
                argv = [sys.executable, "-m", "cli.main", "experiment", str(root / f"{round_}-{name.split()[0]}"),
                        "--data", str(store), "--fractions", "0.5,1.0", "--label-seeds", seeds, "--repeats", "1",
                        "--model", "tiny", "--steps-per-epoch", str(steps_per_epoch), "--max-steps", str(max_steps),
                        "--patience", "0", "--budget", "steps", "--no-figures", "--no-progress", *extra]
                _log(f"round {round_ + 1}/{repeats}: {name} ({runs} runs)")
                seconds[name].append(_time_command(argv, env))
    load_after = os.getloadavg()
    rates = {name: runs * 3600 / min(values) for name, values in seconds.items()}
    result = {"runs": runs, "cores": cpu_count(), "workers": workers, "max_steps": max_steps,
              "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in load_after],
              "seconds": {k: [round(v, 1) for v in vs] for k, vs in seconds.items()},
              "runs_per_hour": {k: round(v) for k, v in rates.items()},
              "speedup": round(rates[f"local x{workers}"] / rates["sequential"], 2)}
    echo(f"grid of {runs} tiny runs ({max_steps} steps each) on {result['cores']} cores, "
         f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for name, rate in rates.items():
        echo(f"  {name:<12} {min(seconds[name]):6.1f} s  {rate:7.0f} runs/hour")
    echo(f"  speed-up of local x{workers} over sequential: {result['speedup']:.2f}")
    return result
