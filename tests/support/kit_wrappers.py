"""Submissions that hand each graded function's work to the course kit (``pk``).

``WRAPPERS[assignment][name]`` is the source of a solution cell defining ``name``
by calling the kit: the shortest "answer" a student could copy from the lessons.
Each one is correct (graded with a kit view that keeps everything it would earn every
point: ``tests/test_no_answers_given.py`` checks that) and must score 0 (while grading, the
student's process has a view of the kit without the code that does graded work: ``kit`` of
``grader/pruning_grader/assignments/*``). The sources run in the notebook's namespace after its
setup cell (``torch``, ``nn``, ``F`` and ``pk`` are imported there).

Add a wrapper for every new graded function (classes too: a subclass of the kit's).
"""

WRAPPERS = {
    "pruning": {
        "magnitude_mask": '''
def magnitude_mask(weight, sparsity):
    """The kit's local magnitude pruning on a layer holding the weight."""
    layer = nn.Linear(1, 1, bias=False)
    layer.weight = nn.Parameter(weight.detach().reshape(1, -1).clone())
    pk.prune.magnitude(nn.Sequential(layer), sparsity, scope="local")
    return layer.weight_mask.detach().reshape(weight.shape).to(weight.dtype)
''',
        "global_magnitude_masks": '''
def global_magnitude_masks(weights, sparsity):
    """The kit's global magnitude pruning on a model holding the weights."""
    names = list(weights)
    layers = []
    for name in names:
        layer = nn.Linear(1, 1, bias=False)
        layer.weight = nn.Parameter(weights[name].detach().reshape(1, -1).clone())
        layers.append(layer)
    pk.prune.magnitude(nn.Sequential(*layers), sparsity, scope="global")
    return {name: layer.weight_mask.detach().reshape(weights[name].shape).to(weights[name].dtype)
            for name, layer in zip(names, layers)}
''',
        "snip_scores": '''
def snip_scores(model, inputs, targets):
    return pk.prune.snip_scores(model, inputs, targets)
''',
        "snip_masks": '''
def snip_masks(scores, sparsity):
    """Scores as the weights of a model, pruned by the kit's global magnitude pruning."""
    names = list(scores)
    layers = []
    for name in names:
        layer = nn.Linear(1, 1, bias=False)
        layer.weight = nn.Parameter(scores[name].detach().reshape(1, -1).clone())
        layers.append(layer)
    pk.prune.magnitude(nn.Sequential(*layers), sparsity, scope="global")
    return {name: layer.weight_mask.detach().reshape(scores[name].shape)
            for name, layer in zip(names, layers)}
''',
        "imp_step": '''
def imp_step(trained, init, masks, rate):
    """The kit's iterative-pruning step on a model holding the trained weights."""
    names = list(masks)
    layers = {}
    for name in names:
        layer = nn.Linear(1, 1, bias=False)
        layer.weight = nn.Parameter(trained[name].detach().reshape(1, -1).clone())
        layers[name] = layer
    model = nn.Sequential(*layers.values())
    pk.prune.apply_masks(model, {str(i): masks[name].reshape(1, -1).to(torch.float32)
                                 for i, name in enumerate(names)})
    pk.prune.magnitude_step(model, rate, scope="local")
    new_masks = {name: layers[name].weight_mask.detach().reshape(masks[name].shape)
                 .to(masks[name].dtype) for name in names}
    return new_masks, {name: init[name] * new_masks[name] for name in names}
''',
        "l1_filter_order": '''
def l1_filter_order(conv_weight):
    return pk.structured.l1_filter_order(conv_weight)
''',
        "sensitivity_scan": '''
def sensitivity_scan(model, data, sparsities):
    """Each layer pruned alone by the kit's magnitude pruning, on a copy."""
    scan = {}
    for name, _ in pk.models.prunable(model):
        scan[name] = []
        for sparsity in sparsities:
            pruned = pk.prune.clone(model)
            pk.prune.magnitude(pruned, 0.0, scope="local", rates={name: sparsity})
            scan[name].append(pk.train.evaluate(pruned, data))
    return scan
''',
        "sparsity_plan": '''
def sparsity_plan():
    """The per-layer sparsities the kit's global magnitude pruning picks on the lab's network
    (the small, sensitive output layer left whole)."""
    train, _ = pk.data.load("mnist5k")
    torch.manual_seed(0)
    model = pk.models.lenet_300_100()
    pk.train.fit(model, train, epochs=10, lr=2e-3, seed=0, progress=False)
    pk.prune.magnitude(model, 0.92, scope="global", rates={"fc3": 0.0})
    return pk.prune.layer_sparsity(model)
''',
        "remove_neurons": '''
def remove_neurons(model, keep):
    """The kit has no surgery for Linear neurons: slicing by hand, MACs from the kit."""
    small = pk.prune.clone(model)
    cols = torch.ones(model.fc1.in_features, dtype=torch.bool)
    for name in ("fc1", "fc2", "fc3"):
        old = getattr(model, name)
        rows = keep.get(name, torch.ones(old.out_features, dtype=torch.bool))
        new = nn.Linear(int(cols.sum()), int(rows.sum()))
        new.weight = nn.Parameter(old.weight.detach()[rows][:, cols].clone())
        new.bias = nn.Parameter(old.bias.detach()[rows].clone())
        setattr(small, name, new)
        cols = rows
    example = torch.zeros(1, model.fc1.in_features)
    return small, pk.metrics.macs(model, example) - pk.metrics.macs(small, example)
''',
    },
    "binarized": {
        "quantize_affine": '''
def quantize_affine(x, bits):
    return pk.quant.quantize_affine(x, bits)
''',
        "dequantize_affine": '''
def dequantize_affine(q, scale, zero_point):
    return pk.quant.dequantize_affine(q, scale, zero_point)
''',
        "quantize_symmetric": '''
def quantize_symmetric(x, bits):
    return pk.quant.quantize_symmetric(x, bits)
''',
        "binarize": '''
def binarize(x):
    return pk.quant.binarize(x)
''',
        "SignSTE": '''
class SignSTE(pk.quant.SignSTE):
    """The kit's straight-through sign."""
''',
        "BinaryLinear": '''
class BinaryLinear(pk.quant.BinaryLinear):
    """The kit's binary linear layer."""
''',
        "integer_linear": '''
def integer_linear(x_q, x_zero_point, w_q, bias_q):
    """The kit's integer convolution with a 1 x 1 kernel on a 1 x 1 image."""
    acc = pk.quant.integer_conv2d(x_q[:, :, None, None], x_zero_point, w_q[:, :, None, None],
                                  bias_q)
    return acc[:, :, 0, 0]
''',
        "quantized_linear": '''
def quantized_linear(x_q, x_scale, x_zero_point, w_q, w_scale, bias_q, out_scale, out_zero_point):
    """The kit's integer convolution (1 x 1) and its fixed-point requantization."""
    acc = pk.quant.integer_conv2d(x_q[:, :, None, None], x_zero_point, w_q[:, :, None, None],
                                  bias_q)
    return pk.quant.requantize(acc, x_scale * w_scale / out_scale, out_zero_point)[:, :, 0, 0]
''',
    },
}

WITHOUT_KIT_VERSION = {"pruning": {}, "binarized": {
    "quantize_bias": "no kit function quantizes a given bias with given scales: "
                     "pk.quant.IntegerConv2d.from_float quantizes a conv's own bias with the "
                     "weight scales it chooses itself (KIT still lists it and the quantizers)",
    "BinarizedMLP": "pk.quant.binarized_mlp binarizes activations inside its BinaryLinear "
                    "(binarize_input=True), not between layers through the notebook's SignSTE as "
                    "the contract asks, so no kit model meets it; with the refusal on it scores 0 "
                    "(tests/test_checks_binarized.py)",
    "train_binarized": "pk.quant.clip_latent_weights clips only the kit's own layers, not the "
                       "notebook's BinaryLinear; with the refusal on it scores 0 "
                       "(tests/test_checks_binarized.py)",
}}
"""``WITHOUT_KIT_VERSION[assignment][name] = reason``: a graded function the kit has no version of."""
