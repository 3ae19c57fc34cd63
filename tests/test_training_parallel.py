"""World size and global batch of a training run: computed from the launch and the parameters,
recorded in the training summary."""

from __future__ import annotations

from harness.protocol import TrainingSummary
from harness.training.parallel import parallel_facts, record_parallelism


def test_global_batch_is_per_device_times_accumulation_times_processes():
    facts = parallel_facts({"batch_size": 4, "gradient_accumulation_steps": 3}, processes=2)
    assert facts == {"world_size": 2, "per_device_batch": 4, "gradient_accumulation_steps": 3, "global_batch": 24}
    assert parallel_facts({"batch_size": 8}, processes=1)["global_batch"] == 8


def test_the_summary_records_world_size_and_global_batch(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    summary = TrainingSummary(hyperparameters={"batch_size": 4}, runtime_s=1.0, trainable_params=1, total_params=2)
    record_parallelism(summary, {"batch_size": 4, "gradient_accumulation_steps": 1})
    assert summary.hyperparameters == {"batch_size": 4, "world_size": 2, "global_batch": 8}
    assert summary.notes == ["trained data-parallel by 2 processes: global batch 8 = 4 per device × 1 "
                             "accumulation × 2"]
    monkeypatch.setenv("WORLD_SIZE", "1")
    alone = TrainingSummary(hyperparameters={}, runtime_s=1.0, trainable_params=1, total_params=2)
    assert record_parallelism(alone, {"batch_size": 8}).hyperparameters == {"world_size": 1, "global_batch": 8}
    assert alone.notes == []
