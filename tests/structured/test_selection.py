"""pk.structured.selection: which filters each conv loses."""

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import MNIST_X, zero_filters


def test_select_filters_removes_the_lowest_l1():
    model = pk.models.lenet5()
    zero_filters(model.conv1, [3, 7, 11])
    removed = st.select_filters(model, 3 / 20, MNIST_X)
    # 3 of 20 filters go in conv1: exactly the three zero ones
    assert removed["conv1"].tolist() == [3, 7, 11]
    assert len(removed["conv2"]) == round(3 / 20 * 50)
