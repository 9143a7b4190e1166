"""Evidence reachability: hand-counted co-buyer paths on a four-user example, and bad input."""

from __future__ import annotations

import pytest

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError
from xcatrec.evaluation.ceiling import reachability, reachability_summary


def _hand_dataset() -> CrossDomainDataset:
    """Source: u0 s0 | u1 s0 | u2 s1 | u3 s1.  Target train: u0 t0 | u1 t0 t1 | u2 t2 | u3 t1.
    Test: u0 -> t1 (u1 shares t0 and s0 with u0 and bought t1), u2 -> t1 (u3 shares s1 with u2 and
    bought t1; nobody shares a target item with u2), u3 -> t3 (nobody bought t3)."""
    source = Domain("source", Vocab.range(2, "item"), Interactions([0, 1, 2, 3], [0, 0, 1, 1]),
                    Interactions.empty(), Interactions.empty())
    target = Domain("target", Vocab.range(4, "item"), Interactions([0, 1, 1, 2, 3], [0, 0, 1, 2, 1]),
                    Interactions.empty(), Interactions([0, 2, 3], [1, 1, 3]))
    return CrossDomainDataset("hand", Vocab.range(4, "user"), source, target, "loo")


def test_hand_counted_links():
    table = reachability(_hand_dataset(), "test", chunk=2)  # two chunks
    assert table["user"].tolist() == [0, 2, 3]
    assert table["target_links"].tolist() == [1.0, 0.0, 0.0]
    assert table["source_links"].tolist() == [1.0, 1.0, 0.0]
    assert table["item_known"].tolist() == [True, True, False]
    assert table["source_only"].tolist() == [False, True, False]
    summary = reachability_summary(table)
    assert summary["via_source"] == pytest.approx(2 / 3) and summary["rows"] == 3


@pytest.mark.parametrize("part", ["train", "known"])
def test_unknown_part_is_a_clear_error(part):
    with pytest.raises(ConfigError, match="part must be"):
        reachability(_hand_dataset(), part)


def test_no_held_out_rows_is_a_clear_error():
    with pytest.raises(ConfigError, match="no target valid rows"):
        reachability(_hand_dataset(), "valid")


def test_by_evidence_splits_users_by_their_strongest_link():
    import pandas as pd
    from xcatrec.evaluation.ceiling import by_evidence, evidence_kind

    table = reachability(_hand_dataset(), "test")
    assert evidence_kind(table).to_dict() == {0: "both", 2: "source", 3: "none"}
    per_user = pd.DataFrame({"method": ["a"] * 3 + ["b"] * 3, "user": [0, 2, 3] * 2,
                             "ndcg@10": [1.0, 0.5, 0.0, 0.2, 0.0, 0.1]})
    out = by_evidence(per_user, table)
    assert list(out.columns) == ["both", "source", "none"]
    assert out.loc["a"].tolist() == [1.0, 0.5, 0.0] and out.loc["b"].tolist() == [0.2, 0.0, 0.1]
    assert out.loc["share"].sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="lacks the columns"):
        by_evidence(per_user.drop(columns="ndcg@10"), table)
