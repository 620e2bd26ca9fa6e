"""pk.structured.selection: which filters each conv loses."""

import pytest
import torch

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import CIFAR_X, MNIST_X, zero_filters


def test_select_filters_removes_the_lowest_l1():
    model = pk.models.lenet5()
    zero_filters(model.conv1, [3, 7, 11])
    removed = st.select_filters(model, 3 / 20, MNIST_X)
    # 3 of 20 filters go in conv1: exactly the three zero ones
    assert removed["conv1"].tolist() == [3, 7, 11]
    assert len(removed["conv2"]) == round(3 / 20 * 50)


def test_reading_weights_and_next_layer_scores_by_hand():
    # a conv reading 3 channels: channel c's score is the L1 of conv[:, c]
    conv = torch.zeros(2, 3, 1, 1)
    conv[0, 0], conv[1, 0], conv[1, 2] = 1.0, -2.0, 0.5
    assert st.next_layer_scores(conv, 3).tolist() == [3.0, 0.0, 0.5]
    assert st.next_layer_scores(conv, 3, importance="l2").tolist() == pytest.approx(
        [5 ** 0.5, 0.0, 0.5])
    # a Linear after flattening 2 channels of 3 positions: columns 0-2 and 3-5
    fc = torch.tensor([[1., 1., 1., 0., 0., 2.], [0., 0., -1., 0., 0., 0.]])
    assert st.reading_weights(fc, 2).shape == (2, 2, 3)
    assert st.next_layer_scores(fc, 2).tolist() == [4.0, 2.0]
    # a transposed conv stores in x out x kh x kw: channel c is its slice [c]
    deconv = torch.zeros(3, 2, 1, 1)
    deconv[1] = 4.0
    assert st.next_layer_scores(deconv, 3, transposed=True).tolist() == [0.0, 8.0, 0.0]
    with pytest.raises(ValueError, match="channels must be a positive int that divides"):
        st.reading_weights(fc, 4)


def test_select_filters_by_the_next_layer_removes_the_channels_it_reads_least():
    model = pk.models.lenet5()
    with torch.no_grad():
        model.conv2.weight[:, [2, 5, 9]] = 0          # conv2 never reads conv1's channels 2, 5, 9
        model.conv1.weight[[2, 5, 9]] *= 100          # ... though their filters are the largest
    by_filter = st.select_filters(model, 3 / 20, MNIST_X)
    by_reader = st.select_filters(model, 3 / 20, MNIST_X, score_by="next_layer")
    assert by_reader["conv1"].tolist() == [2, 5, 9]
    assert not set(by_filter["conv1"].tolist()) & {2, 5, 9}
    # conv2's channels are read by fc1, 16 columns each (4 x 4 after pooling)
    expected = st.next_layer_scores(model.fc1.weight, 50).argsort(stable=True)[:round(0.15 * 50)]
    assert by_reader["conv2"].tolist() == sorted(expected.tolist())
    small = st.l1_filter_prune(model, 3 / 20, MNIST_X, score_by="next_layer")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():   # removing channels conv2 never reads changes nothing downstream
        reference = st.l1_filter_prune(model, 0.0, MNIST_X, ratios={"conv1": 3 / 20},
                                       score_by="next_layer")
        assert torch.allclose(reference(x), model(x), atol=1e-5)
    assert small.conv1.out_channels == 17


def test_greedy_scoring_leaves_out_the_kernels_of_removed_channels():
    # Li et al. 2017, §3.3: conv2's filter 0 is large only through the kernels that read conv1's
    # channel 0; once that channel is removed, greedy scoring ranks filter 0 lowest
    model = pk.models.lenet5()
    with torch.no_grad():
        model.conv1.weight[0] = 0                      # conv1 loses filter 0 first
        model.conv2.weight[0] = 0
        model.conv2.weight[0, 0] = 10.0                # filter 0 reads only channel 0, strongly
    ratios = {"conv1": 1 / 20, "conv2": 1 / 50}        # one filter of each
    independent = st.select_filters(model, 0.0, MNIST_X, ratios=ratios)
    greedy = st.select_filters(model, 0.0, MNIST_X, ratios=ratios, strategy="greedy")
    assert independent["conv1"].tolist() == greedy["conv1"].tolist() == [0]
    assert independent["conv2"].tolist() != [0]
    assert greedy["conv2"].tolist() == [0]
    # both strategies give the same choice when nothing upstream is removed
    same = st.select_filters(model, 0.0, MNIST_X, ratios={"conv2": 0.1}, strategy="greedy")
    assert same["conv2"].tolist() == st.select_filters(model, 0.0, MNIST_X,
                                                       ratios={"conv2": 0.1})["conv2"].tolist()


def test_scoring_choices_are_checked():
    model = pk.models.lenet5()
    with pytest.raises(ValueError, match="score_by must be one of"):
        st.select_filters(model, 0.5, MNIST_X, score_by="next")
    with pytest.raises(ValueError, match="strategy must be one of"):
        st.l1_filter_prune(model, 0.5, MNIST_X, strategy="lazy")
    with pytest.raises(ValueError, match="implemented for plain stacks"):
        st.l1_filter_prune(pk.models.resnet(20), 0.5, CIFAR_X, score_by="next_layer")
