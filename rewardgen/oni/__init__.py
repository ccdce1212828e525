"""ONI: an LLM labels the in-game messages the agents see, asynchronously, while they train; a
reward model turns the labels into an intrinsic reward (retrieval: the label; classification:
a character-level model trained on the labels while the agent trains). The label store is
shared by every env worker and the annotation service and kept across runs."""

from rewardgen.oni.classifier import MessageClassifier, fit_classifier
from rewardgen.oni.prompts import GOALS, PROMPT_VERSION, label_messages, parse_labels
from rewardgen.oni.reward import (
    C_EXT,
    C_INT,
    REWARD_MODELS,
    ClassificationReward,
    OniSpec,
    RankingReward,
    RetrievalReward,
)
from rewardgen.oni.service import AnnotationService, ServiceConfig, annotate_once, refit_classifier
from rewardgen.oni.store import DEFAULT_STORE, LabelKey, LabelStore

__all__ = [
    "C_EXT",
    "C_INT",
    "DEFAULT_STORE",
    "GOALS",
    "PROMPT_VERSION",
    "REWARD_MODELS",
    "AnnotationService",
    "ClassificationReward",
    "LabelKey",
    "LabelStore",
    "MessageClassifier",
    "OniSpec",
    "RankingReward",
    "RetrievalReward",
    "ServiceConfig",
    "annotate_once",
    "fit_classifier",
    "label_messages",
    "parse_labels",
    "refit_classifier",
]
