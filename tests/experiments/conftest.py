"""Shared helpers for the experiments tests."""

import pytest

from kequireg.io import atomic_write_text, rows_to_csv
from kequireg.experiments.experiment_settings import load_or_save_settings
from kequireg.experiments.plan import eval_csv, plan_grid


def _write_fake_results(tmp_path, settings, score):
    """Per-patient CSVs as evaluation writes them, with Dice values given by score(spec, patient)."""
    # as run_experiment resolves them against open_dataset(settings.data): the demo data for None
    settings = settings.resolved(demo=settings.data is None, split=settings.split or "test")
    load_or_save_settings(tmp_path, settings)
    for spec in plan_grid(settings):
        rows = []
        for p in range(4):
            value = score(spec, p)
            rows.append({"case_id": f"P{p}", "dice": value, "dice_wt": value, "dice_tc": value, "dice_et": value,
                         "hd95_wt": 10 * (1 - value), "hd95_tc": 1.0, "hd95_et": 1.0, "equivariance_dice": 0.9})
        atomic_write_text(eval_csv(tmp_path, spec, settings.split), rows_to_csv(rows))


@pytest.fixture
def write_fake_results():
    """Per-patient CSVs as evaluation writes them, with Dice values given by score(spec, patient)."""
    return _write_fake_results


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A one-node SLURM on localhost (munged, slurmctld, slurmd; ``slurm_cluster.LocalSlurm``) for the
    session, stopped by PID at its end; skipped with the reason where it cannot start (not root,
    ``slurm-wlm`` / ``munge`` not installed)."""
    from slurm_cluster import LocalSlurm, unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield cluster
    finally:
        cluster.stop()
