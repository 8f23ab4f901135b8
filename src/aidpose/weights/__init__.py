"""Released weights in and out of aidpose: source formats, name maps, the importer and ``load_model``.

``python -m aidpose.import_weights SRC OUT.ckpt [overrides]`` converts an mmpose, UDP-Pose, HRNet, HigherHRNet,
timm/torchvision or aidpose file into an aidpose checkpoint; ``aidpose.load_model(PATH)`` gives the eval-mode
module of any aidpose checkpoint.
"""

from aidpose.weights.formats import FORMATS, InputConvention, SourceFormat, detect_format
from aidpose.weights.importer import ImportReport, import_weights, read_source, write_checkpoint
from aidpose.weights.load import load_model

__all__ = [
    "FORMATS",
    "ImportReport",
    "InputConvention",
    "SourceFormat",
    "detect_format",
    "import_weights",
    "load_model",
    "read_source",
    "write_checkpoint",
]
