"""What students must never be able to read: the hidden tests, the reference solutions.

:func:`secret_lines` lists lines specific enough that finding one in a file students get means
that file leaks a hidden test, a reference solution or the instructor's solution; :func:`leaks`
looks for them in text.

Example:
    >>> distinctive_lines("x = 1\\n    mask.view(-1)[weight.detach().abs().flatten().argsort()[:k]] = 0\\n")
    ['mask.view(-1)[weight.detach().abs().flatten().argsort()[:k]] = 0']
"""

from __future__ import annotations

import inspect
import re

from .assignments import ASSIGNMENTS, answer_cells


def distinctive_lines(source):
    """Lines long and specific enough that seeing one elsewhere means it was copied."""
    lines = []
    for line in source.splitlines():
        text = line.strip()
        if len(text) >= 28 and not text.startswith(("#", '"""', "def ", "return ", "import ",
                                                    "from ", "class ", "Args:", "Returns:")):
            lines.append(text)
    return lines


# Lines a reference shares with the kit's own public code because they are PyTorch idioms, not
# answers (each one is in pruning_kit; tests/test_student_kit.py checks that this list is exactly
# the set of such lines, so a new shared line fails until someone has looked at it).
COMMON_IDIOMS = frozenset({
    "for name, mask in masks.items():",
    "generator = torch.Generator().manual_seed(seed)",
    "modules = dict(model.named_modules())",
    "nn.init.uniform_(self.bias, -bound, bound)",
    "qmin, qmax = 0, 2 ** bits - 1",
    "self.bias = nn.Parameter(torch.empty(out_features))",
    "self.weight = nn.Parameter(torch.empty(out_features, in_features))",
    "weights = [m.weight for _, m in layers]",
})


def secret_lines(assignments=ASSIGNMENTS, *, solutions=True, idioms=False):
    """Lines of every hidden test and reference solution (and, with ``solutions``, of the
    instructor's answer cells) of the assignments, without the :data:`COMMON_IDIOMS` unless
    ``idioms``."""
    from pruning_grader.nbgrader import load_assignment

    found = set()
    for name in assignments:
        registry = load_assignment(name)
        for test in registry.tests.values():
            found.update(distinctive_lines(inspect.getsource(test.run)))
        for function in registry.functions:
            found.update(distinctive_lines(inspect.getsource(registry.reference(function))))
        if solutions:
            for source in answer_cells(name).values():
                body = re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", source, re.S)
                for part in body:
                    found.update(distinctive_lines(part))
    return sorted(found if idioms else found - COMMON_IDIOMS)


def leaks(text, secrets):
    """The secret lines that appear in ``text`` (HTML tags and entities removed first)."""
    plain = re.sub(r"<[^>]+>", "", text)
    plain = plain.replace("&quot;", '"').replace("&#39;", "'").replace("&gt;", ">")
    plain = plain.replace("&lt;", "<").replace("&amp;", "&")
    plain = plain.replace('\\"', '"')
    return [line for line in secrets if line in text or line in plain]
