"""StartLearningLoop's config reaches the trainer, and bad values fail the start."""

from __future__ import annotations

import pytest

from rlaas.training.v1 import training_pb2 as pb
from services.errors import InvalidArgument
from services.training.loops import _config

pytestmark = pytest.mark.unit


def test_training_config_maps_to_trainer_settings() -> None:
    proto = pb.LearningLoopConfig(
        min_pairs=32,
        training=pb.TrainingConfig(
            method=pb.TRAINING_METHOD_IPO,
            lora=pb.LoraConfig(rank=16, alpha=32, target_modules=["q_proj", "k_proj"]),
            hyperparameters=pb.TrainingHyperparameters(learning_rate=5e-5, num_epochs=2, beta=0.2),
        ),
    )
    cfg = _config(proto)
    assert cfg.min_pairs == 32
    assert cfg.lora == {"rank": 16, "alpha": 32.0, "target_modules": ["q_proj", "k_proj"]}
    assert cfg.dpo == {"loss": "ipo", "learning_rate": 5e-5, "epochs": 2.0, "beta": 0.2}


@pytest.mark.parametrize(
    "training",
    [
        pb.TrainingConfig(method=pb.TRAINING_METHOD_SFT),
        pb.TrainingConfig(
            method=pb.TRAINING_METHOD_DPO,
            hyperparameters=pb.TrainingHyperparameters(beta=-1.0),
        ),
    ],
)
def test_bad_training_config_fails_the_start(training: pb.TrainingConfig) -> None:
    with pytest.raises(InvalidArgument) as info:
        _config(pb.LearningLoopConfig(training=training))
    assert info.value.violations[0].field.startswith("learning_loop.config.training")
