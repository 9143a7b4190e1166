"""The design article's script reproduced for the chapter Case study: its item split, its training,
and every accuracy it prints, labelled with the model and the domain it was measured on.

The network and its one training function (:func:`~xcatrec.models.seed_cnn.train_seed_transfer`:
source model, target model, weight copy, fine-tuning, and the target-only baseline the article leaves
out) live in :mod:`xcatrec.models.seed_cnn`, because the registered method ``seed-cnn`` trains with
them too. That function and :func:`~xcatrec.models.seed_cnn.item_labels` are re-exported here so that
a chapter imports the whole script from one place. What only the book needs is defined here: the
article's random item split and the classification metrics of each trained model on held-out items.
"""

from __future__ import annotations

from xcatrec.book_extras.classification import classification_metrics
from xcatrec.models.seed_cnn import (SeedTransferResult, as_images, as_labels, item_labels, predict_items,
                                     train_seed_transfer)

__all__ = ["split_items", "evaluate_seed", "train_seed_transfer", "item_labels"]


def split_items(images, labels, test_size: float = 0.2, seed: int = 0):
    """The article's random item split: ``(x_train, x_test, y_train, y_test)``, not stratified."""
    from sklearn.model_selection import train_test_split

    return train_test_split(as_images(images), as_labels(labels), test_size=test_size, random_state=seed)


def evaluate_seed(result: SeedTransferResult, images_src, labels_src, images_tgt, labels_tgt,
                  threshold: float = 0.5):
    """Accuracy, precision, recall and F1 of every model on held-out items of each domain.

    Returns:
        A ``pandas.DataFrame`` with one row per (model, domain): columns ``model``, ``domain``, ``n``,
        ``accuracy``, ``precision``, ``recall``, ``f1``. The article's two printed numbers are the rows
        (transferred, source) and (transferred, target), in that order.
    """
    import pandas as pd

    models = {"source": result.source_model, "target-only": result.target_only_model,
              "transferred": result.transferred_model}
    test_sets = {"source": (as_images(images_src), as_labels(labels_src)),
                 "target": (as_images(images_tgt), as_labels(labels_tgt))}
    rows = [{"model": model_name, "domain": domain, "n": len(y),
             **classification_metrics(y, predict_items(model, x), threshold)}
            for model_name, model in models.items() if model is not None
            for domain, (x, y) in test_sets.items()]
    return pd.DataFrame(rows)
