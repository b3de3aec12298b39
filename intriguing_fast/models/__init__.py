"""The paper's MNIST models: architectures, registry by paper name, training, checkpoint cache."""
from .architectures import MLP, AutoencoderClassifier, ConvNet, flatten_images
from .cache import CheckpointCorruptError, CheckpointKeyError, load_checkpoint, save_checkpoint
from .recipes import Phase, Recipe
from .registry import MODEL_ZOO, TABLE1, TABLE3, ModelSpec, UnknownModelError, get_spec
from .regularization import WEIGHT_DECAY_CONVENTION, weight_decay_penalty
from .training import train_model
from .zoo import checkpoint_key, error_rate, trained_model, training_data

__all__ = [
    "MLP",
    "MODEL_ZOO",
    "TABLE1",
    "TABLE3",
    "WEIGHT_DECAY_CONVENTION",
    "AutoencoderClassifier",
    "CheckpointCorruptError",
    "CheckpointKeyError",
    "ConvNet",
    "ModelSpec",
    "Phase",
    "Recipe",
    "UnknownModelError",
    "checkpoint_key",
    "error_rate",
    "flatten_images",
    "get_spec",
    "load_checkpoint",
    "save_checkpoint",
    "train_model",
    "trained_model",
    "training_data",
    "weight_decay_penalty",
]
