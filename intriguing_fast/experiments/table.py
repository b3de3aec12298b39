"""The reproduction as a table of stages.

Each stage names the zoo models it needs (trained, or from the checkpoint cache), the image
set those models are attacked on (the attacks are cached stages of their own), its settings
and the paper's numbers, the function that computes its `results.json` entry (under its
name), and its kind, which picks the report section that renders that entry
(`report/sections.py`). Its key is
formed from its inputs' keys: the weights of its models, the keys of their attacks, the data
fingerprints, its settings and the run's; `pipeline.run` stores the value under that key.

To add a stage: write its compute function (and its settings' dataclass) in a module of its own
here and add a `Stage` to `STAGES`; for a new kind of table, a `StageKind` and its renderer in
`report/sections.py`.
"""

from __future__ import annotations

from ..models import MODEL_ZOO
from . import paper
from .advtrain_stage import SETTINGS as ADVTRAIN_SETTINGS
from .advtrain_stage import adversarial_training, variant_jobs
from .distortion_tables import DistortionSettings, errors_and_distortion
from .probing_stage import SETTINGS as PROBING_SETTINGS
from .probing_stage import unit_probing
from .spectral_stage import SpectralSettings, spectral_table
from .stage import Stage, StageKind
from .transfer import TransferSettings, transfer_table

STAGES: tuple[Stage, ...] = (
    Stage(
        "table1",
        "Table 1: models, errors and minimal distortion",
        StageKind.DISTORTION_TABLE,
        paper.TABLE1_MODELS,
        "train",
        errors_and_distortion,
        DistortionSettings(("train", "test")),
        paper.TABLE1,
    ),
    Stage(
        "table2",
        "Table 2: cross-model generalization (adversarials made on training images)",
        StageKind.TRANSFER_TABLE,
        paper.TABLE1_MODELS,
        "train",
        transfer_table,
        TransferSettings(noise=(0.1, 0.3), amplify=False),
        paper.TABLE2,
    ),
    Stage(
        "table3",
        "Table 3: models trained on disjoint halves P1 and P2",
        StageKind.DISTORTION_TABLE,
        paper.TABLE3_MODELS,
        "test",
        errors_and_distortion,
        DistortionSettings(("P1", "P2", "test")),
        paper.TABLE3,
    ),
    Stage(
        "table4",
        "Table 4: cross-training-set generalization (adversarials made on test images)",
        StageKind.TRANSFER_TABLE,
        paper.TABLE3_MODELS,
        "test",
        transfer_table,
        TransferSettings(noise=(0.06, 0.1), amplify=True),
        paper.TABLE4,
    ),
    Stage(
        "probing",
        "Section 3: units against random directions (Figures 1-2)",
        StageKind.UNIT_PROBING,
        ("ConvNet", "FC100-100-10"),
        None,
        unit_probing,
        PROBING_SETTINGS,
    ),
    # Every zoo model's bounds; the gains measured on the adversarial pairs Tables 1 and 3 make
    # anyway (attacking the ConvNet too would add minutes at quick scale); AlexNet's bounds.
    Stage(
        "spectral",
        "Table 5: spectral analysis of instability (Section 4.3)",
        StageKind.SPECTRAL_TABLE,
        tuple(MODEL_ZOO),
        None,
        spectral_table,
        SpectralSettings(
            pairs={"train": paper.TABLE1_MODELS, "test": paper.TABLE3_MODELS}, power_rtol=1e-6, power_max_iter=100
        ),
        paper.TABLE5,
    ),
    Stage(
        "adversarial_training",
        "Section 4.2: adversarial training with pools (FC100-100-10)",
        StageKind.ADVERSARIAL_TRAINING,
        (),
        None,
        adversarial_training,
        ADVTRAIN_SETTINGS,
        paper.SECTION42,
        variant_jobs,
    ),
)
STAGE_NAMES: tuple[str, ...] = tuple(stage.name for stage in STAGES)


def select(names: tuple[str, ...] | None) -> tuple[Stage, ...]:
    """The stages called `names`, in table order (all of them for None); unknown or no names are an error."""
    if names is None:
        return STAGES
    unknown = [n for n in names if n not in STAGE_NAMES]
    if unknown or not names:
        raise ValueError(f"only: expected one or more of {', '.join(STAGE_NAMES)}, got {', '.join(names) or 'none'}")
    return tuple(stage for stage in STAGES if stage.name in names)
