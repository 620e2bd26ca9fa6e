"""The networks of the papers the course reproduces, sized for a laptop.

- :func:`lenet_300_100` and :func:`lenet5` (LeNet-5-Caffe): Han et al. 2015,
  Frankle & Carbin 2019, Lee et al. 2019 (SNIP) on MNIST.
- :func:`conv` (Conv-2/4/6): the lottery-ticket paper's CIFAR-10 networks.
- :func:`vgg` (VGG-11/16 with BatchNorm) and :func:`resnet` (ResNet-20/56):
  the CIFAR networks of Li et al. 2017 (L1 filter pruning).
- :func:`autoencoder`: a small convolutional autoencoder whose bottleneck the
  structured-pruning lesson prunes.

Every model checks the shape of its input and says what it expects.

Example:
    >>> import pruning_kit as pk
    >>> model = pk.models.lenet_300_100()
    >>> pk.metrics.count_params(model)
    266610
    >>> [name for name, _ in pk.models.prunable(model)]
    ['fc1', 'fc2', 'fc3']
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from ._checks import InvalidParameterError, check_model, check_int, check_number

__all__ = ["lenet_300_100", "lenet5", "conv", "vgg", "resnet", "autoencoder", "prunable",
           "LeNet300100", "LeNet5", "ConvNet", "VGG", "ResNet", "ConvAutoencoder",
           "PRUNABLE_TYPES"]

PRUNABLE_TYPES = (nn.Linear, nn.Conv2d)


def _check_input(x, expected: tuple, model: str) -> None:
    """Raise a ValueError naming the expected shape when ``x`` does not fit."""
    if not isinstance(x, torch.Tensor):
        raise InvalidParameterError(f"{model} expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != tuple(expected):
        wanted = "N x " + " x ".join(str(d) for d in expected)
        raise InvalidParameterError(f"{model} expects input of shape ({wanted}), got {tuple(x.shape)}")


class LeNet300100(nn.Module):
    """Fully connected 784-300-100-10 network (LeCun et al. 1998; Han et al. 2015)."""

    def __init__(self, in_features: int = 784, num_classes: int = 10):
        super().__init__()
        self.in_features = check_int("in_features", in_features, low=1)
        check_int("num_classes", num_classes, low=1)
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            raise InvalidParameterError(f"LeNet-300-100 expects a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x[0].numel() != self.in_features:
            side = math.isqrt(self.in_features)
            image = f" or (N x 1 x {side} x {side})" if side * side == self.in_features else ""
            raise InvalidParameterError(f"LeNet-300-100 expects input of shape (N x {self.in_features})"
                                        f"{image}, got {tuple(x.shape)}")
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def lenet_300_100(in_features: int = 784, num_classes: int = 10) -> LeNet300100:
    """LeNet-300-100: 266,610 parameters for 784 inputs and 10 classes.

    Example:
        >>> model = lenet_300_100()
        >>> sum(p.numel() for p in model.parameters())
        266610
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """
    return LeNet300100(in_features, num_classes)


class LeNet5(nn.Module):
    """LeNet-5-Caffe: conv20(5x5)-pool-conv50(5x5)-pool-fc500-fc10 on 1x28x28."""

    def __init__(self, num_classes: int = 10, *, in_channels: int = 1):
        super().__init__()
        check_int("num_classes", num_classes, low=1)
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.conv1 = nn.Conv2d(in_channels, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)

    def forward(self, x):
        _check_input(x, (self.in_channels, 28, 28), "LeNet-5")
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def lenet5(num_classes: int = 10, *, in_channels: int = 1) -> LeNet5:
    """LeNet-5-Caffe, 431,080 parameters (the Han et al. 2015 / SNIP version).

    Example:
        >>> sum(p.numel() for p in lenet5().parameters())
        431080
    """
    return LeNet5(num_classes, in_channels=in_channels)


class ConvNet(nn.Module):
    """Conv-2/4/6 of Frankle & Carbin 2019: pairs of 3x3 convs, each pair then a
    2x2 max-pool, then fully connected 256-256-classes."""

    WIDTHS = {2: (64,), 4: (64, 128), 6: (64, 128, 256)}

    def __init__(self, depth: int = 2, *, num_classes: int = 10, in_channels: int = 3,
                 image_size: int = 32):
        super().__init__()
        if depth not in self.WIDTHS:
            raise InvalidParameterError(f"Conv depth must be one of 2, 4, 6, got {depth!r}")
        check_int("num_classes", num_classes, low=1)
        self.input_shape = (check_int("in_channels", in_channels, low=1),
                            check_int("image_size", image_size, low=1), image_size)
        layers, channels, size = [], in_channels, image_size
        for width in self.WIDTHS[depth]:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels, size = width, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * size * size, 256), nn.ReLU(),
            nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, num_classes))

    def forward(self, x):
        _check_input(x, self.input_shape, "Conv network")
        return self.classifier(self.features(x))


def conv(depth: int = 2, *, num_classes: int = 10, in_channels: int = 3,
         image_size: int = 32) -> ConvNet:
    """Conv-2, Conv-4 or Conv-6 (lottery-ticket paper, CIFAR-10 by default).

    Example:
        >>> sum(p.numel() for p in conv(2).parameters())   # paper: 4.3M
        4301642
        >>> conv(4, in_channels=1, image_size=28)(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """
    return ConvNet(depth, num_classes=num_classes, in_channels=in_channels, image_size=image_size)


VGG_CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M"],
}


class VGG(nn.Module):
    """CIFAR-style VGG with BatchNorm after every conv and one linear classifier."""

    def __init__(self, depth: int = 16, *, num_classes: int = 10, width: float = 1.0,
                 in_channels: int = 3, image_size: int = 32):
        super().__init__()
        if depth not in VGG_CONFIGS:
            raise InvalidParameterError(f"VGG depth must be one of {sorted(VGG_CONFIGS)}, got {depth!r}")
        check_number("width", width, low=0, low_open=True, hint="1.0 = the paper's widths")
        check_int("num_classes", num_classes, low=1)
        self.input_shape = (check_int("in_channels", in_channels, low=1),
                            check_int("image_size", image_size, low=1), image_size)
        layers, channels = [], in_channels
        for item in VGG_CONFIGS[depth]:
            if item == "M":
                # ceil_mode keeps 28x28 (MNIST) inputs alive through five pools
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                out = max(1, int(round(item * width)))
                layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False),
                           nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        _check_input(x, self.input_shape, "VGG")
        return self.classifier(self.pool(self.features(x)).flatten(1))


def vgg(depth: int = 16, *, num_classes: int = 10, width: float = 1.0, in_channels: int = 3,
        image_size: int = 32) -> VGG:
    """CIFAR VGG-11 or VGG-16 with BatchNorm; ``width`` scales every conv.

    Example:
        >>> model = vgg(16, width=0.25)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> sum(p.numel() for p in vgg(16).parameters())
        14724042
    """
    return VGG(depth, num_classes=num_classes, width=width, in_channels=in_channels,
               image_size=image_size)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet (He et al. 2016): 3 stages of 16/32/64 channels, 6n+2 layers."""

    def __init__(self, depth: int = 20, *, num_classes: int = 10, in_channels: int = 3,
                 image_size: int = 32):
        super().__init__()
        if check_int("depth", depth, low=8, hint="6n+2: 20, 32, 44, 56, 110") % 6 != 2:
            raise InvalidParameterError(f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110), got "
                                        f"{depth!r}")
        check_int("num_classes", num_classes, low=1)
        self.input_shape = (check_int("in_channels", in_channels, low=1),
                            check_int("image_size", image_size, low=1), image_size)
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for i in range(n):
                stage.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            blocks.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = blocks
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        _check_input(x, self.input_shape, "ResNet")
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet(depth: int = 20, *, num_classes: int = 10, in_channels: int = 3,
           image_size: int = 32) -> ResNet:
    """CIFAR ResNet-20 / ResNet-56 (1x1 projection shortcuts where shapes change).

    Example:
        >>> resnet(20)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return ResNet(depth, num_classes=num_classes, in_channels=in_channels, image_size=image_size)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder: ``encoder`` halves the resolution twice down to
    a ``bottleneck``-channel code; ``decoder`` mirrors it with transposed convs."""

    def __init__(self, *, in_channels: int = 1, width: int = 16, bottleneck: int = 8,
                 image_size: int = 28):
        super().__init__()
        self.input_shape = (check_int("in_channels", in_channels, low=1),
                            check_int("image_size", image_size, low=1), image_size)
        if image_size % 4:
            raise InvalidParameterError(f"image_size must be a multiple of 4, got {image_size}")
        w = check_int("width", width, low=1)
        b = check_int("bottleneck", bottleneck, low=1)
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, b, 3, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.Conv2d(b, 2 * w, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(w, in_channels, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x):
        _check_input(x, self.input_shape, "Autoencoder")
        return self.decoder(self.encoder(x))


def autoencoder(*, in_channels: int = 1, width: int = 16, bottleneck: int = 8,
                image_size: int = 28) -> ConvAutoencoder:
    """A small conv autoencoder (reconstructs its input; train with MSE).

    Example:
        >>> ae = autoencoder()
        >>> ae(torch.zeros(2, 1, 28, 28)).shape, ae.encoder(torch.zeros(2, 1, 28, 28)).shape
        (torch.Size([2, 1, 28, 28]), torch.Size([2, 8, 7, 7]))
    """
    return ConvAutoencoder(in_channels=in_channels, width=width, bottleneck=bottleneck,
                           image_size=image_size)


def prunable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``nn.Linear`` / ``nn.Conv2d`` layers that pruning acts on, in order.

    Args:
        model: any ``nn.Module``.

    Returns:
        ``[(qualified name, module), ...]``; empty when the model has none.

    Example:
        >>> [name for name, _ in prunable(lenet5())]
        ['conv1', 'conv2', 'fc1', 'fc2']
    """
    check_model(model)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)]
