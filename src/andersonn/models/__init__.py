"""Models built on the DEQ layer."""

from .classifier import ChannelSumReadout, DEQClassifier, count_parameters, deq_classifier
from .explicit import ExplicitStack, explicit_classifier
from .implicit import ImplicitConvBlock

__all__ = ["ImplicitConvBlock", "DEQClassifier", "ChannelSumReadout", "deq_classifier", "count_parameters",
           "ExplicitStack", "explicit_classifier"]
