"""Forgeries: blank submissions with one change that earned every point under the old design.

Each worked when test cells ran in the student's kernel after the student's code. The first
six add lines at the top of the first answer cell (replacing ``importlib.reload``, an input
transformer, a custom exception handler, ``showtraceback``, a display formatter showing a
chosen number, the checks' modules in ``sys.modules``); the last four replace the first graded
function's body (walking the caller's frames for the expected answer, a result whose
comparisons always succeed: ``__eq__``, ``__torch_function__``, a tensor subclass).
"""

import json

FIRST = {"pruning": ("magnitude_mask", "weight, sparsity", "weight"),
         "binarized": ("quantize_affine", "x, bits", "x")}
"""The first graded function of each assignment, its parameters and its tensor argument."""

# Lines added at the top of the first answer cell; each replaced a piece of the old in-kernel
# test machinery, and each was seen to earn every autograded point of a blank notebook.
PREPENDED = {
    "reload": "import importlib\nimportlib.reload = lambda module, *args, **kwargs: module\n",
    "input-transformer": (
        "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"),
    "exception-handler": (
        "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n"),
    "showtraceback": ("get_ipython().showtraceback = lambda *args, **kwargs: None\n"
                      "get_ipython()._showtraceback = lambda *args, **kwargs: None\n"),
    "display-formatter": (
        "_ip = get_ipython()\n"
        "_ip.display_formatter.formatters['text/plain'].for_type(object, "
        "lambda obj, p, cycle: p.text('100'))\n"
        "_ip.events.register('post_run_cell', lambda result: _ip.displayhook(100))\n"),
    "checks-module": (
        "import sys, types\n"
        "_fake = types.ModuleType('fake')\n"
        "_fake.expect = lambda *args, **kwargs: None\n"
        "for _name in ('pruning_kit.course.testing', 'pruning_grader', "
        "'pruning_grader.checker', 'pruning_kit.course.checks.pruning', "
        "'pruning_kit.course.checks.binarized', 'pruning_kit.course.checks.core'):\n"
        "    sys.modules[_name] = _fake\n"),
}

# Bodies of the first graded function that try to pass its tests without doing its work.
BODIES = {
    "caller-frames": (
        "    import sys\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        for key in ('expected', 'returns', 'reference', 'want'):\n"
        "            if key in frame.f_locals:\n"
        "                return frame.f_locals[key]\n"
        "        frame = frame.f_back\n"
        "    raise NotImplementedError()\n"),
    "always-equal": (
        "    class AlwaysEqual:\n"
        "        def __eq__(self, other): return True\n"
        "        def __ne__(self, other): return False\n"
        "        def __bool__(self): return True\n"
        "        def __getattr__(self, name): return lambda *a, **k: self\n"
        "    return AlwaysEqual()\n"),
    "torch-function": (
        "    import torch\n"
        "    class Agreeable(torch.Tensor):\n"
        "        @classmethod\n"
        "        def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "            return True\n"
        "    return torch.zeros_like({tensor}).as_subclass(Agreeable)\n"),
    "tensor-subclass": (
        "    import torch\n"
        "    class Liar(torch.Tensor):\n"
        "        def __eq__(self, other): return torch.ones_like(self, dtype=torch.bool)\n"
        "        def equal(self, other): return True\n"
        "    return torch.zeros_like({tensor}).as_subclass(Liar)\n"),
}

FORGERIES = sorted([*PREPENDED, *BODIES])



def forged(root, assignment, forgery):
    """``{first graded function: source}``: its released stub with the forgery."""
    nb = json.loads((root / "assignments" / assignment / f"{assignment}.ipynb").read_text())
    name, params, tensor = FIRST[assignment]
    stub = next("".join(c["source"]) for c in nb["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == name)
    if forgery in PREPENDED:
        return {name: PREPENDED[forgery] + stub}
    return {name: f"def {name}({params}):\n" + BODIES[forgery].replace("{tensor}", tensor)}
