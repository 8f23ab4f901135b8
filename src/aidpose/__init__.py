"""aidpose: human pose estimation with AID (Augmentation by Information Dropping)."""

import os

# albumentations checks online for updates on import; this machine and most clusters are offline.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
