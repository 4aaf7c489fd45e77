"""Transfer evaluation: the evaluators a method lists (kNN, linear probe, held-out metrics) and
what they share (frozen features, the collapse monitor)."""
from sslax.eval.collapse import collapse_alarm, collapse_metrics
from sslax.eval.context import EvalData, EvalRun
from sslax.eval.features import extract_features, extract_features_and_labels, make_feature_fn
from sslax.eval.heldout import HeldoutMetrics, real_rows
from sslax.eval.knn import KNN, knn_accuracy, knn_predict
from sslax.eval.layer_probe import LayerProbe
from sslax.eval.linear_probe import LinearProbe, fit_logistic_regression, linear_probe

__all__ = ["EvalData", "EvalRun", "HeldoutMetrics", "KNN", "LayerProbe", "LinearProbe", "collapse_alarm", "collapse_metrics",
           "extract_features", "extract_features_and_labels", "fit_logistic_regression", "knn_accuracy",
           "knn_predict", "linear_probe", "make_feature_fn", "real_rows"]
