"""pk.structured.importance: filter scores and their order, by hand."""

import torch

from pruning_kit import structured as st


def test_l1_scores_and_order_by_hand():
    w = torch.zeros(4, 2, 1, 1)
    w[0] = 3.0    # L1 6
    w[1, 0] = -1  # L1 1
    w[2] = 0.5    # L1 1 (tie with filter 1: stable order keeps 1 first)
    w[3, 1] = 2   # L1 2
    assert st.l1_filter_scores(w).tolist() == [6.0, 1.0, 1.0, 2.0]
    assert st.l1_filter_order(w).tolist() == [1, 2, 3, 0]
