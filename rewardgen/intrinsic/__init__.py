"""ONI: an LLM labels the in-game messages the agents see, asynchronously, while they train; a
reward model turns the labels into an intrinsic reward (retrieval for now). The label store is
shared by every env worker and the annotation service and kept across runs."""

from rewardgen.intrinsic.prompts import GOALS, PROMPT_VERSION, label_messages, parse_labels
from rewardgen.intrinsic.reward import OniSpec, RetrievalReward
from rewardgen.intrinsic.service import AnnotationService, ServiceConfig, annotate_once
from rewardgen.intrinsic.store import DEFAULT_STORE, LabelKey, LabelStore

__all__ = [
    "DEFAULT_STORE",
    "GOALS",
    "PROMPT_VERSION",
    "AnnotationService",
    "LabelKey",
    "LabelStore",
    "OniSpec",
    "RetrievalReward",
    "ServiceConfig",
    "annotate_once",
    "label_messages",
    "parse_labels",
]
