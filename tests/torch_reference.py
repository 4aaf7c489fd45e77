"""torchvision's ResNet and timm's VisionTransformer restated in plain PyTorch, with their module
names, for the weight parity tests (tests/test_weights.py); lightly's `SwaVLoss` restated for
tests/test_swav.py.

The PyPI wheels of torchvision (and timm, which imports it) are CUDA builds whose compiled ops do
not load beside the CPU build of torch that the `test` extra installs, so CI cannot import them.
These classes follow torchvision 0.28 `models/resnet.py` (v1.5: the stride on the 3x3 conv) and
timm 1.0 `models/vision_transformer.py` (qkv packed q | k | v, pre-norm, eps 1e-6, exact GELU);
`experiments/weights_parity.py` checks, where the real libraries import, that their state-dict
names, shapes and outputs are the same as these. lightly's `lightly.loss` package imports
torchvision too; `experiments/swav_lightly_parity.py` checks `swav_loss_lightly` against lightly
1.6.0's `lightly/loss/swav_loss.py` itself.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, cin, planes, stride=1):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = None
    if stride != 1 or cin != planes:
      self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, cin, planes, stride=1):
    super().__init__()
    out = planes * 4
    self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(out)
    self.downsample = None
    if stride != 1 or cin != out:
      self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = F.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
  """torchvision's ResNet without `fc`; `cifar_stem`: solo-learn's 3x3/1 conv1 and no max-pool;
  `width` the first stage's (64 in torchvision)."""

  def __init__(self, block, layers, *, width=64, in_channels=3, cifar_stem=False):
    super().__init__()
    self.conv1 = (nn.Conv2d(in_channels, width, 3, 1, 1, bias=False) if cifar_stem
                  else nn.Conv2d(in_channels, width, 7, 2, 3, bias=False))
    self.bn1 = nn.BatchNorm2d(width)
    self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(3, 2, 1)
    cin = width
    for i, n in enumerate(layers):
      blocks = []
      for j in range(n):
        blocks.append(block(cin, width * 2**i, 2 if i > 0 and j == 0 else 1))
        cin = width * 2**i * block.expansion
      setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))

  def forward(self, x):
    x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
    for i in range(1, 5):
      x = getattr(self, f"layer{i}")(x)
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class Attention(nn.Module):
  def __init__(self, dim, num_heads):
    super().__init__()
    self.num_heads = num_heads
    self.qkv = nn.Linear(dim, dim * 3)
    self.proj = nn.Linear(dim, dim)

  def forward(self, x):
    b, n, c = x.shape
    q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
    x = F.scaled_dot_product_attention(q, k, v)
    return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
  def __init__(self, dim, hidden):
    super().__init__()
    self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

  def forward(self, x):
    return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
  def __init__(self, dim, num_heads, mlp_ratio):
    super().__init__()
    self.norm1 = nn.LayerNorm(dim, eps=1e-6)
    self.attn = Attention(dim, num_heads)
    self.norm2 = nn.LayerNorm(dim, eps=1e-6)
    self.mlp = Mlp(dim, int(dim * mlp_ratio))

  def forward(self, x):
    x = x + self.attn(self.norm1(x))
    return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
  def __init__(self, patch_size, in_chans, dim):
    super().__init__()
    self.proj = nn.Conv2d(in_chans, dim, patch_size, patch_size)

  def forward(self, x):
    return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
  """timm's VisionTransformer with `num_classes=0, global_pool='token'`: the normed class token."""

  def __init__(self, *, img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, **_):
    super().__init__()
    self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
    self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
    self.pos_embed = nn.Parameter(torch.randn(1, 1 + (img_size // patch_size) ** 2, embed_dim) * 0.02)
    self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
    self.norm = nn.LayerNorm(embed_dim, eps=1e-6)

  def forward(self, x):
    x = self.patch_embed(x)
    x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
    return self.norm(self.blocks(x))[:, 0]


@torch.no_grad()
def sinkhorn_lightly(scores, iterations=3, epsilon=0.05):
  """lightly 1.6.0 `sinkhorn` on one process: codes [B, K] of scores [B, K]."""
  q = torch.exp(scores / epsilon).t()
  q = q / q.sum()
  b = q.shape[1]
  for _ in range(iterations):
    q = q / q.sum(dim=1, keepdim=True)
    q = q / q.sum(dim=0, keepdim=True) / b
  return (q * b).t()


def swav_loss_lightly(high, low, queue=None, temperature=0.1, iterations=3, epsilon=0.05):
  """lightly 1.6.0 `SwaVLoss.forward(high_resolution_outputs, low_resolution_outputs, queue_outputs)`:
  lists of [N, K] scores (and [Q, K] queue scores per high-resolution crop)."""
  n_crops = len(high) + len(low)
  loss = 0.0
  for i, scores in enumerate(high):
    with torch.no_grad():
      joint = scores.detach() if queue is None else torch.cat([scores.detach(), queue[i].detach()])
      q = sinkhorn_lightly(joint, iterations, epsilon)[:len(scores)]
    others = [high[v] for v in range(len(high)) if v != i] + list(low)
    sub = sum(-torch.mean(torch.sum(q * F.log_softmax(z / temperature, dim=1), dim=1)) for z in others)
    loss = loss + sub / (n_crops - 1)
  return loss / len(high)
