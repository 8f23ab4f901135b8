"""aidpose: human pose estimation with AID (Augmentation by Information Dropping)."""

import os

# albumentations checks online for updates on import; this machine and most clusters are offline.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``aidpose.load_model`` (imported on first use: ``import aidpose`` stays light)."""
    if name == "load_model":
        from aidpose.weights.load import load_model

        return load_model
    raise AttributeError(f"module 'aidpose' has no attribute {name!r}")
