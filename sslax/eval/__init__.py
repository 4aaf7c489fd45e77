"""Transfer evaluation: linear probe and kNN on frozen features; the collapse monitor."""
from sslax.eval.collapse import collapse_alarm, collapse_metrics
from sslax.eval.features import extract_features, extract_features_and_labels, make_feature_fn
from sslax.eval.knn import knn_accuracy, knn_predict
from sslax.eval.linear_probe import fit_logistic_regression, linear_probe

__all__ = ["collapse_alarm", "collapse_metrics", "extract_features", "extract_features_and_labels", "fit_logistic_regression", "knn_accuracy",
           "knn_predict", "linear_probe", "make_feature_fn"]
