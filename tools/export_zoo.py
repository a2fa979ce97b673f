"""Export the edgec test-model zoo: plain-torch re-implementations of mobile architectures, random weights, ONNX.

Runs inside a private venv that has torch + onnx (tests/zoo.py builds it); torch is never an edgec dependency.
    python tools/export_zoo.py OUT_DIR [NAME ...]
Writes OUT_DIR/<name>.onnx (temp file + rename) and prints one JSON line per model (bytes, max |activation|).

The classifiers follow torchvision's reference definitions (layers, activations, channel/stride configs, init);
they are written here compactly because torchvision has no CPU wheel on our index. Weights are random
(torch.manual_seed(0) per model) but realistic: torchvision's init, small random biases where that init leaves zeros, random BatchNorm/LayerNorm
affine params,
and BatchNorm running statistics calibrated on seeded N(0, 1) inputs so activations stay in a trained net's
range (max |activation| < 1e4, so fp16 backends are testable) while eval-mode BN is not an identity.
Legacy TorchScript exporter (dynamo=False), opset 17.
"""

from __future__ import annotations

import json
import math
import os
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

OPSET = 17
MAX_ACT = 1e4


def _make_divisible(v: float, divisor: int = 8) -> int:
    # torchvision's rounding of channel counts (keeps within 10% of v)
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNAct(nn.Sequential):
    """torchvision's Conv2dNormActivation: conv (no bias) + BatchNorm + optional activation."""

    def __init__(self, cin, cout, k=3, s=1, groups=1, act=nn.ReLU, bn=nn.BatchNorm2d):
        layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False), bn(cout)]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: global pool -> 1x1 conv -> act -> 1x1 conv -> gate."""

    def __init__(self, ch, squeeze, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(ch, squeeze, 1), nn.Conv2d(squeeze, ch, 1)
        self.activation, self.scale_activation = act(), gate()

    def forward(self, x):
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


def _torchvision_init(model, linear="normal"):
    # torchvision's MobileNet/EfficientNet/ResNet init: conv kaiming_normal(fan_out), BN 1/0, Linear per family
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear == "normal":
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear == "uniform":
            r = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- mobilenet_v2
class InvertedResidualV2(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers = [ConvBNAct(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        cin, last = 32, 1280
        features = [ConvBNAct(3, cin, 3, 2, act=nn.ReLU6)]
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidualV2(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNAct(cin, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        _torchvision_init(self)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------- mobilenet_v3_small
class InvertedResidualV3(nn.Module):
    def __init__(self, cin, k, expanded, cout, use_se, act, stride):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        bn = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        act = nn.Hardswish if act == "HS" else nn.ReLU
        layers = [ConvBNAct(cin, expanded, 1, act=act, bn=bn)] if expanded != cin else []
        layers.append(ConvBNAct(expanded, expanded, k, stride, groups=expanded, act=act, bn=bn))
        if use_se:
            layers.append(SqueezeExcitation(expanded, _make_divisible(expanded // 4, 8), gate=nn.Hardsigmoid))
        layers.append(ConvBNAct(expanded, cout, 1, act=None, bn=bn))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res_connect else self.block(x)


class MobileNetV3Small(nn.Module):
    # (in, kernel, expanded, out, use_se, activation, stride) from torchvision's _mobilenet_v3_conf("small")
    SETTING = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
               (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
               (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1), (48, 5, 288, 96, True, "HS", 2),
               (96, 5, 576, 96, True, "HS", 1), (96, 5, 576, 96, True, "HS", 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        bn = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)
        layers = [ConvBNAct(3, 16, 3, 2, act=nn.Hardswish, bn=bn)]
        layers += [InvertedResidualV3(*cfg) for cfg in self.SETTING]
        layers.append(ConvBNAct(96, 576, 1, act=nn.Hardswish, bn=bn))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(inplace=True), nn.Dropout(0.2),
                                        nn.Linear(1024, num_classes))
        _torchvision_init(self)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---------------------------------------------------------------- efficientnet_b0
class MBConv(nn.Module):
    def __init__(self, expand, k, stride, cin, cout):
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        expanded = _make_divisible(cin * expand, 8)
        layers = [ConvBNAct(cin, expanded, 1, act=nn.SiLU)] if expanded != cin else []
        layers += [ConvBNAct(expanded, expanded, k, stride, groups=expanded, act=nn.SiLU),
                   SqueezeExcitation(expanded, max(1, cin // 4), act=partial(nn.SiLU, inplace=True)),
                   ConvBNAct(expanded, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)  # stochastic depth is the identity in eval mode

    def forward(self, x):
        return x + self.block(x) if self.use_res_connect else self.block(x)


class EfficientNetB0(nn.Module):
    # (expand_ratio, kernel, stride, in, out, layers) from torchvision's _efficientnet_conf("efficientnet_b0")
    SETTING = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
               (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]

    def __init__(self, num_classes=1000):
        super().__init__()
        layers = [ConvBNAct(3, 32, 3, 2, act=nn.SiLU)]
        for t, k, s, cin, cout, n in self.SETTING:
            layers.append(nn.Sequential(*[MBConv(t, k, s if i == 0 else 1, cin if i == 0 else cout, cout)
                                          for i in range(n)]))
        layers.append(ConvBNAct(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2, inplace=True), nn.Linear(1280, num_classes))
        _torchvision_init(self, linear="uniform")

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---------------------------------------------------------------- resnet18
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        self.relu, self.maxpool = nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        stages, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d((1, 1)), nn.Linear(512, num_classes)
        _torchvision_init(self, linear="default")  # torchvision keeps nn.Linear's own init for fc

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- shufflenet_v2_x1_0
def channel_shuffle(x, groups: int):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride, bf = stride, cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin if stride > 1 else bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True),
            nn.Conv2d(bf, bf, 3, stride, 1, groups=bf, bias=False), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024), num_classes=1000):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), nn.BatchNorm2d(channels[0]),
                                   nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stages = channels[0], []
        for n, cout in zip(repeats, channels[1:4]):
            stages.append(nn.Sequential(ShuffleUnit(cin, cout, 2), *[ShuffleUnit(cout, cout, 1) for _ in range(n - 1)]))
            cin = cout
        self.stage2, self.stage3, self.stage4 = stages
        self.conv5 = nn.Sequential(nn.Conv2d(cin, channels[4], 1, bias=False), nn.BatchNorm2d(channels[4]),
                                   nn.ReLU(inplace=True))
        self.fc = nn.Linear(channels[4], num_classes)
        # torchvision's ShuffleNetV2 keeps PyTorch's default init

    def forward(self, x):
        x = self.stage4(self.stage3(self.stage2(self.maxpool(self.conv1(x)))))
        return self.fc(self.conv5(x).mean([2, 3]))


# ---------------------------------------------------------------- squeezenet1_1
class Fire(nn.Module):
    def __init__(self, cin, squeeze, e1, e3):
        super().__init__()
        self.squeeze, self.squeeze_activation = nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True)
        self.expand1x1, self.expand1x1_activation = nn.Conv2d(squeeze, e1, 1), nn.ReLU(inplace=True)
        self.expand3x3, self.expand3x3_activation = nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        pool = partial(nn.MaxPool2d, kernel_size=3, stride=2, ceil_mode=True)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), pool(),
            Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
            Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
            Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), Fire(512, 64, 256, 256))
        final_conv = nn.Conv2d(512, num_classes, 1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        for m in self.modules():  # torchvision's SqueezeNet init
            if isinstance(m, nn.Conv2d):
                if m is final_conv:
                    nn.init.normal_(m.weight, 0, 0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# ---------------------------------------------------------------- transformer_block
class TransformerBlock(nn.Module):
    """Pre-norm ViT encoder block: x + MHSA(LN(x)), then x + MLP(LN(x)); attention as explicit MatMul/Softmax."""

    def __init__(self, dim=128, heads=4, mlp_ratio=4):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.ln_1, self.ln_2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        for m in self.modules():  # torchvision ViT: xavier_uniform Linear weights, near-zero biases
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=0.02)
            elif isinstance(m, nn.LayerNorm):
                _random_affine(m)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(self.ln_1(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))
        return x + self.mlp(self.ln_2(x))


# ---------------------------------------------------------------- detection_head
class CSP(nn.Module):
    """YOLOv8 C2f-style block: 1x1 conv, split in two, a bottleneck on one half, concat all, 1x1 conv."""

    def __init__(self, ch):
        super().__init__()
        self.half = ch // 2
        self.cv1, self.cv2 = ConvBNAct(ch, ch, 1, act=nn.SiLU), ConvBNAct(3 * ch // 2, ch, 1, act=nn.SiLU)
        self.m = nn.Sequential(ConvBNAct(ch // 2, ch // 2, 3, act=nn.SiLU), ConvBNAct(ch // 2, ch // 2, 3, act=nn.SiLU))

    def forward(self, x):
        a, b = self.cv1(x).split(self.half, dim=1)
        return self.cv2(torch.cat([a, b, b + self.m(b)], 1))


class SPPF(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.cv1, self.cv2 = ConvBNAct(ch, ch // 2, 1, act=nn.SiLU), ConvBNAct(2 * ch, ch, 1, act=nn.SiLU)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):
        y0 = self.cv1(x)
        y1 = self.pool(y0)
        y2 = self.pool(y1)
        return self.cv2(torch.cat([y0, y1, y2, self.pool(y2)], 1))


class DetectionHead(nn.Module):
    """Small YOLO-style detector on 1x3x256x256: strided CSP backbone, SPPF, FPN top-down path (nearest and
    bilinear x2 upsampling + concat), three anchor heads decoded with Split + Sigmoid -> [1, 4032, 5 + classes]."""

    def __init__(self, num_classes=4, anchors=3):
        super().__init__()
        self.no, self.na = 5 + num_classes, anchors
        conv = partial(ConvBNAct, act=nn.SiLU)
        self.stem = nn.Sequential(conv(3, 16, 3, 2), conv(16, 32, 3, 2), CSP(32))
        self.c3 = nn.Sequential(conv(32, 64, 3, 2), CSP(64))
        self.c4 = nn.Sequential(conv(64, 128, 3, 2), CSP(128))
        self.c5 = nn.Sequential(conv(128, 256, 3, 2), SPPF(256))
        self.lat5, self.lat4 = conv(256, 128, 1), conv(128, 64, 1)
        self.up_nearest = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.fuse4, self.fuse3 = CSP(256), CSP(128)
        self.reduce4, self.reduce3 = conv(256, 128, 1), conv(128, 64, 1)
        self.heads = nn.ModuleList(nn.Sequential(conv(c, c, 3), nn.Conv2d(c, anchors * self.no, 1))
                                   for c in (64, 128, 128))
        _torchvision_init(self)

    def forward(self, x):
        c3 = self.c3(self.stem(x))
        c4 = self.c4(c3)
        p5 = self.lat5(self.c5(c4))
        p4 = self.reduce4(self.fuse4(torch.cat([self.up_nearest(p5), c4], 1)))
        p3 = self.reduce3(self.fuse3(torch.cat([self.up_bilinear(self.lat4(p4)), c3], 1)))
        outs = []
        for head, p in zip(self.heads, (p3, p4, p5)):
            y = head(p)
            b, _, h, w = y.shape
            outs.append(y.view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).reshape(b, -1, self.no))
        xy, wh, conf = torch.cat(outs, 1).split([2, 2, self.no - 4], dim=-1)
        # YOLOv5 decode without the anchor grid: bounded offsets and sizes, sigmoid scores
        return torch.cat([torch.sigmoid(xy) * 2 - 0.5, (torch.sigmoid(wh) * 2) ** 2, torch.sigmoid(conf)], -1)


# ---------------------------------------------------------------- sequence models (several named inputs)
class Attention(nn.Module):
    """Multi-head attention written as the usual export patterns: Linear q/k/v, per-head Reshape/Transpose,
    MatMul + Softmax; an optional boolean key mask (Where) and past keys/values (Concat)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))

    def split(self, x):
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.hd).transpose(1, 2)

    def forward(self, x, memory=None, keep=None, past=None):
        memory = x if memory is None else memory
        q, k, v = self.split(self.q(x)), self.split(self.k(memory)), self.split(self.v(memory))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        scores = (q @ k.transpose(-2, -1)) * self.hd ** -0.5
        if keep is not None:  # keep: [B, 1, 1, S] bool
            scores = scores.masked_fill(~keep, -1e4)
        y = torch.softmax(scores, -1) @ v
        b, _, n, _ = y.shape
        return self.o(y.transpose(1, 2).reshape(b, n, -1)), (k, v)


class EncoderLayer(nn.Module):
    """Post-norm BERT layer (or pre-norm): attention, LayerNorm, GELU MLP, LayerNorm."""

    def __init__(self, dim, heads, pre_norm=False):
        super().__init__()
        self.pre_norm = pre_norm
        self.attn = Attention(dim, heads)
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, keep=None):
        if self.pre_norm:
            x = x + self.attn(self.ln1(x), keep=keep)[0]
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x, keep=keep)[0])
        return self.ln2(x + self.mlp(x))


def _seq_init(model):
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.normal_(m.bias, std=0.02)
        elif isinstance(m, nn.LayerNorm):
            _random_affine(m)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.5)


class TextEncoder(nn.Module):
    """BERT-style sentence encoder: word + position + token-type embeddings, LayerNorm, 2 post-norm layers with a
    padding mask (Equal/Where), mean pooling over the kept tokens (Expand, ReduceSum, Div)."""

    def __init__(self, vocab=1000, types=16, dim=64, heads=4, max_len=64):
        super().__init__()
        self.word, self.types, self.pos = nn.Embedding(vocab, dim), nn.Embedding(types, dim), nn.Embedding(max_len, dim)
        self.ln = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads) for _ in range(2))
        _seq_init(self)

    def forward(self, input_ids, attention_mask, token_type_ids):
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device).unsqueeze(0)
        h = self.ln(self.word(input_ids) + self.types(token_type_ids) + self.pos(positions))
        keep = attention_mask != 0
        for layer in self.layers:
            h = layer(h, keep[:, None, None, :])
        m = keep.unsqueeze(-1).expand(h.size()).float()
        return (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)


@torch.jit.script
def _frontend(x: torch.Tensor, sr: torch.Tensor, w16: torch.Tensor, w8: torch.Tensor) -> torch.Tensor:
    # the sample rate picks the filterbank (an If in ONNX, as in the VADs people ship); 8 kHz audio has half the
    # samples per chunk, so its filters are half as long at half the stride
    if bool(sr == 16000):
        return F.conv1d(x, w16, stride=64)
    return F.conv1d(x[:, :, :256], w8, stride=32)


class StreamingVAD(nn.Module):
    """Voice-activity detector run chunk by chunk: 512 samples + the LSTM state in, speech probability + the new
    state out; a scalar sample-rate input selects the front end (If)."""

    def __init__(self, hidden=32, feats=24):
        super().__init__()
        self.w16 = nn.Parameter(torch.randn(feats, 1, 64) * 0.12)  # 8 frames of 64 samples per 512-sample chunk
        self.w8 = nn.Parameter(torch.randn(feats, 1, 32) * 0.18)
        self.lstm = nn.LSTM(feats, hidden, batch_first=True)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)
        _seq_init(self)

    def forward(self, x, state, sr):
        f = torch.relu(_frontend(x.unsqueeze(1), sr, self.w16, self.w8)).transpose(1, 2)  # [1, frames, feats]
        y, (h, c) = self.lstm(f, (state[0:1], state[1:2]))
        z, g = self.gru(y, state[2:3])
        prob = torch.sigmoid(self.head(z[:, -1]))
        return prob, torch.cat([h, c, g], 0)


class SpeechEncoder(nn.Module):
    """Conformer-lite speech encoder: log-mel frames -> two strided Conv1d (4x subsampling) -> 2 pre-norm
    transformer layers."""

    def __init__(self, mels=40, dim=96, heads=4):
        super().__init__()
        self.sub = nn.Sequential(nn.Conv1d(mels, dim, 3, 2, 1), nn.GELU(), nn.Conv1d(dim, dim, 3, 2, 1), nn.GELU())
        self.pos = nn.Parameter(torch.randn(1, 25, dim) * 0.1)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, pre_norm=True) for _ in range(2))
        self.ln = nn.LayerNorm(dim)
        _seq_init(self)

    def forward(self, features):
        h = self.sub(features).transpose(1, 2) + self.pos
        for layer in self.layers:
            h = layer(h)
        return self.ln(h)


class DetrHead(nn.Module):
    """DETR-style detection head over a backbone feature map: 1x1 projection, flattened memory + sine-free
    learned positions, one decoder layer (self-attention over object queries, cross-attention to the memory, MLP),
    class logits and sigmoid boxes."""

    def __init__(self, cin=128, dim=64, heads=4, queries=12, classes=6, hw=64):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, 1)
        self.pos = nn.Parameter(torch.randn(1, hw, dim) * 0.1)
        self.query = nn.Parameter(torch.randn(1, queries, dim))
        self.self_attn, self.cross_attn = Attention(dim, heads), Attention(dim, heads)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.cls = nn.Linear(dim, classes + 1)
        self.box = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 4))
        _seq_init(self)

    def forward(self, features):
        memory = self.proj(features).flatten(2).transpose(1, 2) + self.pos
        q = self.query.expand(features.shape[0], -1, -1)
        q = self.ln1(q + self.self_attn(q)[0])
        q = self.ln2(q + self.cross_attn(q, memory)[0])
        q = self.ln3(q + self.mlp(q))
        return self.cls(q), torch.sigmoid(self.box(q))


class DecoderStep(nn.Module):
    """One step of a GPT-style decoder with a KV cache: token id + past keys/values in, next-token logits + the
    cache grown by one position out."""

    def __init__(self, vocab=500, dim=64, heads=4, max_len=64):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, dim), nn.Embedding(max_len, dim)
        self.ln1, self.ln2, self.lnf = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.lm_head = nn.Linear(dim, vocab)
        _seq_init(self)

    def forward(self, input_ids, past_key, past_value):
        position = torch.full_like(input_ids, past_key.shape[2])
        h = self.tok(input_ids) + self.pos(position)
        a, (k, v) = self.attn(self.ln1(h), past=(past_key, past_value))
        h = h + a
        h = h + self.mlp(self.ln2(h))
        return self.lm_head(self.lnf(h)), k, v


SEQ_ZOO = {  # name -> (constructor, {input: (shape, dtype)}, output names); shapes are the exported ones
    "text_encoder": (TextEncoder, {"input_ids": ((1, 16), "int64"), "attention_mask": ((1, 16), "int64"),
                                   "token_type_ids": ((1, 16), "int64")}, ["embedding"]),
    "streaming_vad": (StreamingVAD, {"x": ((1, 512), "float32"), "state": ((3, 1, 32), "float32"),
                                     "sr": ((), "int64")}, ["prob", "state_out"]),
    "speech_encoder": (SpeechEncoder, {"features": ((1, 40, 100), "float32")}, ["encoded"]),
    "detr_head": (DetrHead, {"features": ((1, 128, 8, 8), "float32")}, ["logits", "boxes"]),
    "decoder_step": (DecoderStep, {"input_ids": ((1, 1), "int64"), "past_key": ((1, 4, 8, 16), "float32"),
                                   "past_value": ((1, 4, 8, 16), "float32")}, ["logits", "present_key", "present_value"]),
    # the text encoder as people export it for variable lengths: the sequence axis dynamic (Shape/Range/Reshape
    # computed at run time instead of baked at 16)
    "text_encoder_dyn": (TextEncoder, {"input_ids": ((1, 16), "int64"), "attention_mask": ((1, 16), "int64"),
                                       "token_type_ids": ((1, 16), "int64")}, ["embedding"]),
}
DYNAMIC_AXES = {"text_encoder_dyn": {"input_ids": {1: "seq"}, "attention_mask": {1: "seq"}, "token_type_ids": {1: "seq"}}}


def _example(name: str, shape, dtype: str) -> torch.Tensor:
    if name == "sr":
        return torch.tensor(16000)
    if dtype == "int64":
        return torch.randint(0, 2 if "mask" in name else 10, shape)
    return torch.randn(*shape) * (0.1 if name == "x" else 1.0)


def export_seq(name: str, out_dir: Path) -> dict:
    ctor, inputs, outputs = SEQ_ZOO[name]
    torch.manual_seed(0)
    model = ctor().eval()
    args = tuple(_example(n, s, d) for n, (s, d) in inputs.items())
    with torch.no_grad():
        peak = max(float(o.abs().max()) for o in _as_tuple(model(*args)))
    out = out_dir / f"{name}.onnx"
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    try:
        torch.onnx.export(model, args, str(tmp), dynamo=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=list(inputs), output_names=outputs, dynamic_axes=DYNAMIC_AXES.get(name))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"name": name, "bytes": out.stat().st_size, "inputs": {n: list(s) for n, (s, _) in inputs.items()},
            "max_abs_output": round(peak, 3)}


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


# ---------------------------------------------------------------- weights, export
def _random_biases(model, std=0.05):
    """Trained nets have non-zero biases: all-zero ones would hide bias bugs in a lowering (and the exporter
    dedupes identical zero initializers into Identity nodes)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None and not m.bias.any():
            nn.init.normal_(m.bias, 0.0, std)


def _random_affine(norm):
    nn.init.uniform_(norm.weight, 0.5, 1.5)
    nn.init.normal_(norm.bias, 0.0, 0.1)


@torch.no_grad()
def _calibrate_batchnorm(model, shape, batches=2, batch=4):
    """Random BN affine params, then running stats averaged over seeded N(0,1) batches (as training leaves them)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        return
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        _random_affine(bn)
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
        bn.train()
    for _ in range(batches):
        model(torch.randn(batch, *shape[1:]))
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    model.eval()


@torch.no_grad()
def _max_activation(model, x) -> float:
    peak = [0.0]

    def hook(_module, _inputs, out):
        if isinstance(out, torch.Tensor):
            peak[0] = max(peak[0], float(out.abs().max()))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return peak[0]


ZOO = {  # name -> (constructor, input shape)
    "mobilenet_v2": (MobileNetV2, (1, 3, 224, 224)),
    "mobilenet_v3_small": (MobileNetV3Small, (1, 3, 224, 224)),
    "efficientnet_b0": (EfficientNetB0, (1, 3, 224, 224)),
    "resnet18": (ResNet18, (1, 3, 224, 224)),
    "shufflenet_v2_x1_0": (ShuffleNetV2, (1, 3, 224, 224)),
    "squeezenet1_1": (SqueezeNet11, (1, 3, 224, 224)),
    "transformer_block": (TransformerBlock, (1, 64, 128)),
    "detection_head": (DetectionHead, (1, 3, 256, 256)),
}


def export(name: str, out_dir: Path) -> dict:
    ctor, shape = ZOO[name]
    torch.manual_seed(0)  # per model, so each file is independent of which others are exported
    model = ctor().eval()
    _random_biases(model)
    _calibrate_batchnorm(model, shape)
    x = torch.randn(*shape)
    peak = _max_activation(model, x)
    if not math.isfinite(peak) or peak >= MAX_ACT:
        raise SystemExit(f"{name}: max |activation| {peak:.3g} >= {MAX_ACT:g}; fp16 backends could not be tested")
    out = out_dir / f"{name}.onnx"
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    try:
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=OPSET, do_constant_folding=True,
                          input_names=["input"], output_names=["output"])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"name": name, "bytes": out.stat().st_size, "input": list(shape), "max_abs_activation": round(peak, 3)}


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, names = Path(argv[0]), argv[1:] or list(ZOO)
    unknown = [n for n in names if n not in ZOO and n not in SEQ_ZOO]
    if unknown:
        print(f"unknown zoo model(s): {', '.join(unknown)}; known: {', '.join([*ZOO, *SEQ_ZOO])}", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    for name in names:
        print(json.dumps(export(name, out_dir) if name in ZOO else export_seq(name, out_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
