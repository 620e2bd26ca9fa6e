"""The grader's code that runs in the student's process: watched calls, forward traces, training.

Each function here is sent as source with :func:`source_of` and run there by
:meth:`pruning_grader.remote.Student.run`, on the student's objects (``student``
is the notebook's namespace there). What it returns is plain data (tensors,
numbers, lists, dicts) plus the student's model as a remote handle; every
verdict is decided in the grader's process from those values. What a helper
*observes* in that process (which matrix products ran in floating point, the
latent weights before each optimizer step, the batches a loop trained on) is
instrumentation the student's code could in principle disturb: the clauses
that rest on it say so in their notes.

The functions import what they use inside their bodies: the scope they run in
holds only ``student`` and their inputs.

Example:
    >>> source_of(watched_call).startswith("def watched_call(student, name, args):")
    True
"""

from __future__ import annotations

import inspect


def source_of(function, call=None):
    """``function``'s source, then ``result = <call>`` (default: called with its parameters)."""
    params = [p for p in inspect.signature(function).parameters]
    call = call or f"{function.__name__}({', '.join(params)})"
    return f"{inspect.getsource(function)}\nresult = {call}\n"


def watched_call(student, name, args):
    """Call ``student[name](*args)`` and note every matrix product that ran on floating-point
    tensors; ``{"value", "args", "float_products"}`` (``args`` as the call left them)."""
    import torch
    from torch.overrides import TorchFunctionMode

    products = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "addbmm",
                "baddbmm", "mv", "addmv", "dot", "vdot", "inner", "outer", "ger", "addr",
                "linear", "bilinear", "einsum", "tensordot", "chain_matmul", "conv1d",
                "conv2d", "kron"}

    class Watch(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if getattr(func, "__name__", "") in products:
                for value in list(args) + list(kwargs.values()):
                    values = value if isinstance(value, (list, tuple)) else [value]
                    floating = [v for v in values
                                if isinstance(v, torch.Tensor) and v.is_floating_point()]
                    if floating:
                        self.seen.append([func.__name__, str(floating[0].dtype)])
                        break
            return func(*args, **kwargs)

    with Watch() as watch:
        value = student[name](*args)
    return {"value": value, "args": list(args), "float_products": watch.seen[:10]}


def trace_forward(model, x, upstream, mode):
    """One forward pass of ``model(x)`` in ``mode`` ("train" or "eval") with hooks on every
    module, then backward of ``upstream`` (in training mode).

    Returns ``{"output", "calls", "grads"}``: for each module call in order its path, class
    name, first input and output (values as they were then); the gradients that reached
    each call's input and output (None where none did).
    """
    import torch

    calls, tensors = [], []

    def hook(path):
        def record(module, inputs, output):
            first = inputs[0] if inputs else None
            entry = {"path": path, "type": type(module).__name__,
                     "input": first.detach().clone() if isinstance(first, torch.Tensor) else None,
                     "output": output.detach().clone() if isinstance(output, torch.Tensor)
                     else None}
            kept = []
            for tensor in (first, output):
                if isinstance(tensor, torch.Tensor) and tensor.requires_grad \
                        and tensor.grad_fn is not None:
                    tensor.retain_grad()
                    kept.append(tensor)
                else:
                    kept.append(None)
            calls.append(entry)
            tensors.append(kept)
        return record

    handles = [module.register_forward_hook(hook(path))
               for path, module in model.named_modules() if path]
    try:
        model.train(mode == "train")
        with torch.enable_grad():
            out = model(x)
            if mode == "train" and isinstance(out, torch.Tensor) and out.requires_grad:
                out.backward(upstream)
    finally:
        for handle in handles:
            handle.remove()
    grads = [[t.grad.detach().clone() if t is not None and t.grad is not None else None
              for t in kept] for kept in tensors]
    return {"output": out.detach().clone() if isinstance(out, torch.Tensor) else out,
            "calls": calls, "grads": grads}


def train_course_loop(student, model, train, epochs, seed, loop_source):
    """Train the student's ``model`` with the course's loop (``loop_source`` defines
    ``train_binarized``) on one thread, every generator seeded; the model is left in eval mode."""
    import random

    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812 - the loop's source uses F

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    scope = {"torch": torch, "F": F}
    exec(compile(loop_source, "<course loop>", "exec"), scope)  # noqa: S102 - the grader's code
    losses = scope["train_binarized"](model, train, epochs, seed)
    model.eval()
    return losses


def watched_training(student, train, epochs, seed, hidden, probe, fingerprint):
    """Run the student's ``train_binarized`` on the course's ``BinarizedMLP(784, hidden, 10)``
    built with ``seed``, a few latent weights set to +-3 and one batch-norm scale to 2.5.

    Watches (instrumentation): every forward pass in training mode (a fingerprint of each
    input row and the logits) and, before every optimizer step, the number of forward
    passes so far and the largest latent weight. Afterwards: the state dict, and the
    logits of the same ``probe`` images scored as one batch and as a smaller one.
    """
    import random

    import numpy as np
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = student["BinarizedMLP"](784, hidden, 10)
    layers = [m for m in model.modules() if type(m).__name__ == "BinaryLinear"]
    with torch.no_grad():
        for layer in layers:
            layer.weight[0, :2] = torch.tensor([3.0, -3.0])
        model.bn1.weight[0] = 2.5
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    forwards, steps = [], []

    def on_forward(module, inputs, output):
        if module.training and inputs and isinstance(output, torch.Tensor):
            rows = inputs[0].detach().reshape(len(inputs[0]), -1).double()
            forwards.append((rows @ fingerprint, output.detach().clone()))

    def before_step(optimizer, args, kwargs):
        largest = max(float(layer.weight.detach().abs().max()) for layer in layers)
        steps.append([len(forwards), largest])

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handles = [model.register_forward_hook(on_forward),
               register_optimizer_step_pre_hook(before_step)]
    try:
        losses = student["train_binarized"](model, train, epochs, seed)
    finally:
        for handle in handles:
            handle.remove()
    final = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        whole, part = model(probe), model(probe[:16])
    return {"losses": losses, "model": model, "initial": initial, "final": final,
            "fingerprints": [f for f, _ in forwards], "logits": [o for _, o in forwards],
            "steps": steps, "probe": [whole[:16], part]}


def seeded_training(student, train, epochs, seed, hidden):
    """Run the student's ``train_binarized`` on the course's ``BinarizedMLP(784, hidden, 10)``
    built with ``seed``, every generator seeded: ``{"losses", "model", "state"}``."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = student["BinarizedMLP"](784, hidden, 10)
    losses = student["train_binarized"](model, train, epochs, seed)
    return {"losses": losses, "model": model,
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
