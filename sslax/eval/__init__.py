"""Transfer evaluation: linear probe and kNN on frozen features."""
from sslax.eval.features import extract_features, make_feature_fn
from sslax.eval.knn import knn_accuracy, knn_predict
from sslax.eval.linear_probe import fit_logistic_regression, linear_probe

__all__ = ["extract_features", "fit_logistic_regression", "knn_accuracy", "knn_predict",
           "linear_probe", "make_feature_fn"]
