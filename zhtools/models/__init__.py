"""Encoder loading: the shipped default, any Hugging Face name or folder; safetensors only."""

from zhtools.models.loader import (
    DEFAULT_MODEL_DIR,
    LoadedEncoder,
    ModelNotFoundError,
    default_model_path,
    load_encoder,
    pick_device,
    save_model,
)

__all__ = [
    "DEFAULT_MODEL_DIR",
    "LoadedEncoder",
    "ModelNotFoundError",
    "default_model_path",
    "load_encoder",
    "pick_device",
    "save_model",
]
