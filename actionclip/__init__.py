"""ActionCLIP for Hugging Face Transformers.

Importing the package registers, once, the configuration and models with the transformers Auto classes (and,
as their modules are added, the processor and the zero-shot video classification pipeline).
"""

__version__ = "0.1.0"

from .configuration_actionclip import ACTIONCLIP_TEMPLATES, ActionCLIPConfig
from .errors import (
    ActionCLIPError,
    CheckpointConversionError,
    DatasetFormatError,
    EvaluationReportError,
    EvaluationReportNotFoundError,
    FrameIndexError,
    InvalidLabelsError,
    InvalidProtocolError,
    InvalidSplitFileError,
    InvalidSyntheticConfigError,
    InvalidTemplateError,
    MissingProcessorError,
    ModelCardError,
    ModelConfigNotFoundError,
    PartialDecodeWarning,
    PipelineArgumentError,
    SamplingError,
    TooManyBadSamplesError,
    UnsafeCheckpointError,
    VideoDecodeError,
    VideoProcessingError,
    VideoTimeoutError,
    VideoWriteError,
)
from .loss import ActionCLIPLoss
from .modeling_actionclip import (
    ActionCLIPForVideoClassification,
    ActionCLIPModel,
    ActionCLIPOutput,
    ActionCLIPPreTrainedModel,
)
from .processing_actionclip import ActionCLIPProcessor
from .prompts import PromptTemplater, normalize_label
from .registration import register_with_transformers
from .video_processing_actionclip import ActionCLIPVideoProcessor

register_with_transformers()

__all__ = [
    "ACTIONCLIP_TEMPLATES",
    "ActionCLIPConfig",
    "ActionCLIPError",
    "ActionCLIPForVideoClassification",
    "ActionCLIPLoss",
    "ActionCLIPModel",
    "ActionCLIPOutput",
    "ActionCLIPPreTrainedModel",
    "ActionCLIPProcessor",
    "ActionCLIPVideoProcessor",
    "CheckpointConversionError",
    "DatasetFormatError",
    "EvaluationReportError",
    "EvaluationReportNotFoundError",
    "FrameIndexError",
    "InvalidLabelsError",
    "InvalidProtocolError",
    "InvalidSplitFileError",
    "InvalidSyntheticConfigError",
    "InvalidTemplateError",
    "MissingProcessorError",
    "ModelCardError",
    "ModelConfigNotFoundError",
    "PartialDecodeWarning",
    "PipelineArgumentError",
    "PromptTemplater",
    "SamplingError",
    "TooManyBadSamplesError",
    "UnsafeCheckpointError",
    "VideoDecodeError",
    "VideoProcessingError",
    "VideoTimeoutError",
    "VideoWriteError",
    "normalize_label",
]
