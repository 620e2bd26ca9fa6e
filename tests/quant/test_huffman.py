"""pk.quant.huffman: Huffman codes, by hand and round trip."""

import pytest
import torch

from pruning_kit import quant


def test_huffman_known_code_and_lengths():
    code = quant.huffman_code([0, 0, 0, 0, 1, 1, 2, 3])
    assert code.codes == {0: "0", 1: "10", 2: "110", 3: "111"}
    assert code.encoded_bits == 4 * 1 + 2 * 2 + 1 * 3 + 1 * 3
    assert quant.huffman_code([7, 7]).codes == {7: "0"}


def test_huffman_round_trip_and_prefix_free():
    torch.manual_seed(0)
    symbols = torch.multinomial(torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05]), 3000,
                                replacement=True)
    code = quant.huffman_code(symbols)
    words = list(code.codes.values())
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    bits = quant.huffman_encode(symbols, code)
    assert len(bits) == code.encoded_bits
    assert quant.huffman_decode(bits, code) == symbols.tolist()
    # fewer bits than the 3-bit fixed-width code, at least the entropy
    p = torch.bincount(symbols).double() / len(symbols)
    entropy = float(-(p * p.log2()).sum()) * len(symbols)
    assert entropy <= code.encoded_bits < 3 * len(symbols)


def test_huffman_errors():
    with pytest.raises(ValueError, match="no symbols"):
        quant.huffman_code([])
    code = quant.huffman_code("aaabbc")         # a: 0, b: 10, c: 11
    with pytest.raises(ValueError, match="has no code"):
        quant.huffman_encode("abd", code)
    with pytest.raises(ValueError, match="middle of a code word"):
        quant.huffman_decode("1", code)
    with pytest.raises(ValueError, match="'0' and '1'"):
        quant.huffman_decode("012", code)
