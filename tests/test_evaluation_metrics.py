"""Metrics agree with scikit-learn (test-only dependency), ties included."""

from __future__ import annotations

import numpy as np
import pytest

from edge.evaluation import metrics as M

sk = pytest.importorskip("sklearn.metrics")


def _cases():
    rng = np.random.default_rng(0)
    for i in range(60):
        n = int(rng.integers(2, 400))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        s = rng.normal(size=n)
        if i % 3 == 0:
            s = np.round(s, 1)  # heavy ties
        elif i % 3 == 1:
            s = rng.integers(0, 4, n).astype(float)  # few distinct values
        yield y, s


@pytest.mark.parametrize("case", list(_cases()))
def test_against_sklearn(case):
    y, s = case
    assert M.roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert M.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, thr = sk.roc_curve(y, s, drop_intermediate=False)
    f2, t2, th2 = M.roc_curve(y, s)
    np.testing.assert_allclose(f2, fpr)
    np.testing.assert_allclose(t2, tpr)
    np.testing.assert_allclose(th2[1:], thr[1:])
    assert M.equal_error_rate(y, s) == fpr[np.argmin(np.abs(1 - tpr - fpr))]
    p, r, _ = sk.precision_recall_curve(y, s)
    p2, r2, _ = M.precision_recall_curve(y, s)
    # scikit-learn lists them lowest threshold first and appends (1, 0)
    np.testing.assert_allclose(p2[::-1], p[:-1])
    np.testing.assert_allclose(r2[::-1], r[:-1])


def test_conventions():
    anomalous = np.array([0, 0, 1, 1, 0, 1, 0, 0], bool)
    normality = np.array([-1.0, -2.0, -5.0, -1.5, -3.0, -3.0, -0.5, -4.0])
    m = M.benchmark_metrics(anomalous, normality)
    assert m["auc_roc"] == pytest.approx(sk.roc_auc_score(anomalous, -normality))
    assert m["auc_roc"] == pytest.approx(sk.roc_auc_score(~anomalous, normality))  # the reference's way
    assert m["auc_pr_normal_positive"] == pytest.approx(sk.average_precision_score(~anomalous, normality))
    assert m["auc_pr_anomaly_positive"] == pytest.approx(sk.average_precision_score(anomalous, -normality))
    assert m["auc_pr_normal_positive"] != pytest.approx(m["auc_pr_anomaly_positive"])
    assert m["n_frames"] == 8 and m["n_anomalous"] == 3


def test_perfect_and_one_class():
    y = np.array([0, 0, 1, 1])
    assert M.roc_auc(y, [0, 1, 2, 3]) == 1.0 and M.equal_error_rate(y, [0, 1, 2, 3]) == 0.0
    assert np.isnan(M.roc_auc([1, 1], [0.1, 0.2])) and np.isnan(M.average_precision([0, 0], [0.1, 0.2]))
    with pytest.raises(ValueError, match="must be finite"):
        M.roc_auc(y, [0, np.nan, 1, 2])
    with pytest.raises(ValueError, match="4 labels but 3 scores"):
        M.roc_auc(y, [0, 1, 2])
