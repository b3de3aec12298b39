"""The paper's MNIST models: architectures, the zoo by paper name, recipes, training, checkpoint cache,
adversarial training with pools (Section 4.2)."""

from .adversarial import (
    AdversarialModel,
    AdversarialPool,
    AdversarialRecipe,
    PoolSettings,
    load_or_train_adversarial,
    train_adversarial,
)
from .adversarial.split import LayerSplit, layer_names, split_model
from .architectures import MLP, AutoencoderClassifier, ConvNet, flatten_images
from .cache import CheckpointCorruptError, CheckpointKeyError, load_checkpoint, save_checkpoint
from .recipes import Phase, Recipe
from .regularization import WEIGHT_DECAY_CONVENTION, weight_decay_penalty
from .trained import TrainedModel, checkpoint_key, load_or_train, trained_model, training_data
from .training import train_model
from .zoo import MODEL_ZOO, ModelSpec, UnknownModelError, get_spec

__all__ = [
    "AdversarialModel",
    "AdversarialPool",
    "AdversarialRecipe",
    "LayerSplit",
    "PoolSettings",
    "layer_names",
    "load_or_train_adversarial",
    "split_model",
    "train_adversarial",
    "MLP",
    "MODEL_ZOO",
    "WEIGHT_DECAY_CONVENTION",
    "AutoencoderClassifier",
    "CheckpointCorruptError",
    "CheckpointKeyError",
    "ConvNet",
    "ModelSpec",
    "Phase",
    "Recipe",
    "TrainedModel",
    "UnknownModelError",
    "checkpoint_key",
    "flatten_images",
    "get_spec",
    "load_checkpoint",
    "load_or_train",
    "save_checkpoint",
    "train_model",
    "trained_model",
    "training_data",
    "weight_decay_penalty",
]
