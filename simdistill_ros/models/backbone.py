"""ResNet-family image backbone returning the stride 8, 16 and 32 feature maps."""

from __future__ import annotations

from torch import Tensor, nn

from simdistill_ros.models.config import BackboneConfig


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; (B, Cin, H, W) -> (B, C, H/stride, W/stride)."""

    expansion = 1
    CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"))  # for batchnorm_fold

    def __init__(self, cin: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        cout = channels * self.expansion
        self.conv1 = nn.Conv2d(cin, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 x4 with a residual; (B, Cin, H, W) -> (B, 4C, H/stride, W/stride)."""

    expansion = 4
    CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))  # for batchnorm_fold

    def __init__(self, cin: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        cout = channels * self.expansion
        self.conv1 = nn.Conv2d(cin, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if cin == cout and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class ResNet(nn.Module):
    """Stem (stride 4) + four stages (strides 4, 8, 16, 32).

    forward: (B, 3, H, W) -> [(B, C2, H/8, W/8), (B, C3, H/16, W/16), (B, C4, H/32, W/32)]
    """

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        if len(cfg.layers) != 4 or len(cfg.widths) != 4:
            raise ValueError("BackboneConfig.layers and .widths need four stages")
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}.get(cfg.block)
        if block is None:
            raise ValueError(f"unknown block {cfg.block!r}; use 'basic' or 'bottleneck'")
        self.stem = nn.Sequential(
            conv_bn_relu(3, cfg.stem_channels, cfg.stem_kernel, stride=2),
            nn.MaxPool2d(3, 2, 1),
        )
        stages = []
        cin = cfg.stem_channels
        for i, (n, width) in enumerate(zip(cfg.layers, cfg.widths)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width, stride=2 if (i > 0 and j == 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = [w * block.expansion for w in cfg.widths[1:]]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i > 0:
                outs.append(x)
        return outs


def build_backbone(cfg: BackboneConfig) -> nn.Module:
    """The backbone ``cfg.kind`` names; it has ``out_channels`` (3 ints) and returns stride 8/16/32 maps."""
    if cfg.kind == "resnet":
        return ResNet(cfg)
    if cfg.kind == "efficientnet_lite0":
        from simdistill_ros.models.efficientnet import EfficientNetLite0, load_lite0_imagenet

        model = EfficientNetLite0(cfg.frozen_stages)
        if cfg.pretrained:
            load_lite0_imagenet(model)
        return model
    raise ValueError(f"unknown backbone kind {cfg.kind!r}; use 'resnet' or 'efficientnet_lite0'")
