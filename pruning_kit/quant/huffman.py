"""Huffman coding: frequent symbols get short codes (the last stage of Deep Compression).

After pruning and weight sharing, a layer is stored as two streams of small
integers: the cluster index of every kept weight and the gap between
consecutive kept positions. Neither is uniformly distributed, so a prefix code
built from their counts (Huffman 1952) stores them in fewer bits than a
fixed-width code. Codes here are real: :func:`huffman_encode` returns the bit
string and :func:`huffman_decode` reads it back.

Example:
    >>> code = huffman_code([0, 0, 0, 0, 1, 1, 2, 3])
    >>> code.codes
    {0: '0', 1: '10', 2: '110', 3: '111'}
    >>> bits = huffman_encode([0, 1, 3], code); bits
    '010111'
    >>> huffman_decode(bits, code)
    [0, 1, 3]
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from .._checks import InvalidParameterError, check_int, type_name

__all__ = ["HuffmanCode", "huffman_code", "huffman_encode", "huffman_decode"]


@dataclass(frozen=True)
class HuffmanCode:
    """A prefix code: ``codes`` maps each symbol to its bit string, ``counts`` to its frequency.

    ``encoded_bits`` is the length of the whole message the counts came from;
    ``table_bits`` estimates what the decoder must also be told: a canonical
    Huffman code is rebuilt from each symbol's code length, so one byte per
    symbol (plus the symbol itself when ``symbol_bits`` is given) suffices.
    """

    codes: dict
    counts: dict

    @property
    def encoded_bits(self) -> int:
        """Bits needed for the message whose counts built the code."""
        return sum(len(self.codes[s]) * n for s, n in self.counts.items())

    def table_bits(self, symbol_bits: int = 0) -> int:
        """Bits to transmit the code itself: 8 per code length (+ ``symbol_bits`` each)."""
        return len(self.codes) * (8 + symbol_bits)

    def average_length(self) -> float:
        """Mean bits per symbol over the message."""
        total = sum(self.counts.values())
        return self.encoded_bits / total if total else 0.0


def _as_symbols(symbols):
    """A tensor's values as a flat list; anything else as it is."""
    try:
        import torch

        if isinstance(symbols, torch.Tensor):
            return symbols.flatten().tolist()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return symbols


def _check_code(code) -> None:
    if not isinstance(code, HuffmanCode):
        raise InvalidParameterError(
            f"code must be a HuffmanCode from huffman_code, got {type_name(code)}")


def _counts(symbols) -> Counter:
    if isinstance(symbols, dict):
        counts = Counter(symbols)
    else:
        try:
            counts = Counter(_as_symbols(symbols))
        except TypeError:
            raise InvalidParameterError(
                "symbols must be an iterable of hashable symbols (ints, strings) "
                f"or a dict symbol -> count, got {type_name(symbols)}") from None
    counts = {s: check_int("counts", n, low=0, hint=f"the count of symbol {s!r}")
              for s, n in counts.items()}
    counts = Counter({s: n for s, n in counts.items() if n > 0})
    if not counts:
        raise InvalidParameterError(
            "cannot build a Huffman code from no symbols: pass at least one")
    return counts


def _order(symbol):
    """A sort key that works for mixed symbol types and makes ties deterministic."""
    return (type(symbol).__name__, symbol)


def huffman_code(symbols) -> HuffmanCode:
    """Build a Huffman code from a sequence of symbols or a dict of counts.

    Ties are broken deterministically (by count, then by the smallest symbol
    in each subtree), so the same counts always give the same code; codes are
    canonical (assigned in order of length, then symbol). A single
    distinct symbol gets the one-bit code ``"0"``.

    Args:
        symbols: an iterable of hashable symbols (a 1-D tensor is fine), or a
            dict ``{symbol: count}``.

    Returns:
        A :class:`HuffmanCode`.

    Example:
        >>> code = huffman_code({"a": 5, "b": 2, "c": 1, "d": 1})
        >>> code.codes, code.encoded_bits
        ({'a': '0', 'b': '10', 'c': '110', 'd': '111'}, 15)
        >>> huffman_code([7, 7, 7]).codes
        {7: '0'}
    """
    counts = _counts(symbols)
    ordered = sorted(counts, key=_order)
    if len(ordered) == 1:
        return HuffmanCode({ordered[0]: "0"}, dict(counts))
    # Huffman's merge gives each symbol its code length (its depth in the tree);
    # heap entries: (count, tie-break rank, {symbol: depth})
    heap = [(counts[s], i, {s: 0}) for i, s in enumerate(ordered)]
    heapq.heapify(heap)
    while len(heap) > 1:
        n1, r1, low = heapq.heappop(heap)
        n2, r2, high = heapq.heappop(heap)
        merged = {s: d + 1 for s, d in {**low, **high}.items()}
        heapq.heappush(heap, (n1 + n2, min(r1, r2), merged))
    lengths = heap[0][2]
    # canonical code: sorted by (length, symbol), each code is the previous + 1,
    # shifted left when the length grows; the decoder needs only the lengths
    codes, value, previous = {}, 0, None
    for s in sorted(lengths, key=lambda s: (lengths[s], _order(s))):
        if previous is not None:
            value = (value + 1) << (lengths[s] - previous)
        codes[s] = format(value, f"0{lengths[s]}b")
        previous = lengths[s]
    return HuffmanCode(codes, {s: counts[s] for s in codes})


def huffman_encode(symbols, code: HuffmanCode) -> str:
    """The bit string (``'0'``/``'1'`` characters) of ``symbols`` under ``code``.

    Example:
        >>> huffman_encode("abca", huffman_code("aaab c"))
        '0111100'
    """
    _check_code(code)
    out = []
    for s in _as_symbols(symbols):
        if s not in code.codes:
            raise InvalidParameterError(
                f"symbol {s!r} has no code; the code knows {list(code.codes)[:10]}")
        out.append(code.codes[s])
    return "".join(out)


def huffman_decode(bits: str, code: HuffmanCode) -> list:
    """Read symbols back from a bit string produced by :func:`huffman_encode`.

    Example:
        >>> code = huffman_code([1, 1, 2, 3])
        >>> huffman_decode(huffman_encode([3, 1, 2, 1], code), code)
        [3, 1, 2, 1]
    """
    _check_code(code)
    if not isinstance(bits, str) or set(bits) - {"0", "1"}:
        raise InvalidParameterError("bits must be a string of '0' and '1' characters")
    lookup = {c: s for s, c in code.codes.items()}
    out, current = [], ""
    for b in bits:
        current += b
        if current in lookup:
            out.append(lookup[current])
            current = ""
    if current:
        raise InvalidParameterError(
            f"bits end in the middle of a code word ({current!r} left over)")
    return out
