"""Evaluation: ranking metrics, protocols (full and sampled ranking), rating metrics, and
statistics over seeds and (:mod:`~xcatrec.evaluation.bootstrap`) over users and seeds.

Nothing here imports TensorFlow: models are only used through their ``score`` / ``predict_ratings``.
"""

from xcatrec.evaluation.bootstrap import (VERDICTS, VERDICTS_ZH, BootstrapResult, compare_runs, compare_users,
                                          describe, paired_bootstrap, per_user_frame, per_user_records, verdict,
                                          verdict_zh)
from xcatrec.evaluation.metrics import (UserRanks, auc, f1, hit_rate, mae, mrr, ndcg, precision, ranking_metrics,
                                        recall, rmse, tie_aware_ranks)
from xcatrec.evaluation.protocols import PROTOCOLS, evaluate, evaluate_ratings
from xcatrec.evaluation.candidates import sample_negatives
from xcatrec.evaluation.stats import (PairedTest, best_versus, paired_user_test, records, summarize,
                                      to_markdown)

__all__ = ["PROTOCOLS", "evaluate", "evaluate_ratings", "UserRanks",
           "tie_aware_ranks", "hit_rate", "recall", "precision", "f1", "ndcg", "mrr", "auc",
           "ranking_metrics", "mae", "rmse", "sample_negatives", "records", "summarize", "paired_user_test",
           "PairedTest", "to_markdown", "best_versus", "paired_bootstrap", "BootstrapResult", "verdict",
           "describe", "VERDICTS", "VERDICTS_ZH", "verdict_zh", "compare_runs", "compare_users", "per_user_records", "per_user_frame"]
