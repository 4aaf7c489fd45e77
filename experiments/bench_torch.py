"""PyTorch references for `experiments/bench.py`: the same models, losses and optimizers as sslax's.

SimCLR: a CIFAR ResNet-18 (3x3 stem, no max-pool, as solo-learn), the
projector Linear-BN-ReLU-Linear, NT-Xent over 2N views (as solo-learn's
`simclr_loss_func`), SGD with momentum and weight decay. BYOL: the same
encoder and projector, a predictor of the same form, an EMA target network
(encoder + projector, batch statistics, no gradients) moved after each
optimizer step with one fused `torch._foreach_lerp_`, the symmetrized
2 - 2 cos loss; SGD as SimCLR. BERT and GPT:
Hugging Face `transformers`' BertForMaskedLM / GPT2LMHeadModel configured
with sslax's dimensions, dropout and exact GELU, AdamW. Needs the `[hf]`
extra (torch, transformers); sslax itself never imports this file.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.shortcut = nn.Sequential()
    if stride != 1 or cin != cout:
      self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    return F.relu(y + self.shortcut(x))


class CifarResNet18(nn.Module):
  def __init__(self, width=64):
    super().__init__()
    self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
    layers, cin = [], width
    for i in range(4):
      for j in range(2):
        cout = width * 2**i
        layers.append(BasicBlock(cin, cout, 2 if i > 0 and j == 0 else 1))
        cin = cout
    self.layers = nn.Sequential(*layers)
    self.num_features = cin

  def forward(self, x):
    return self.layers(self.stem(x)).mean(dim=(2, 3))


def mlp_head(d, hidden, out):
  """sslax's MLPHead with two layers: Linear (no bias) - BN - ReLU - Linear."""
  return nn.Sequential(nn.Linear(d, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out))


class SimCLRNet(nn.Module):
  def __init__(self, hidden, out):
    super().__init__()
    self.encoder = CifarResNet18()
    self.projector = mlp_head(self.encoder.num_features, hidden, out)

  def forward(self, x):
    return self.projector(self.encoder(x))


def nt_xent(z1, z2, temperature):
  z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
  n = z1.shape[0]
  logits = z @ z.T / temperature
  logits.fill_diagonal_(float("-inf"))
  target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
  return F.cross_entropy(logits, target)


def _views(batch, device):
  g = torch.Generator().manual_seed(0)
  return torch.randn(2 * batch, 3, 32, 32, generator=g).to(device).contiguous(memory_format=torch.channels_last)


def simclr_workload(config, batch, device):
  """step(autocast) -> loss: two [B, 3, 32, 32] views through SimCLRNet, NT-Xent, SGD."""
  net = SimCLRNet(config.projector.hidden_dim, config.projector.out_dim).to(device).to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=config.optim.momentum,
                        weight_decay=config.optim.weight_decay)
  views = _views(batch, device)

  def step(autocast):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      z = net(views)
      loss = nt_xent(z[:batch], z[batch:], config.method.temperature)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss
  return step


def byol_loss(p1, p2, z1, z2):
  cos = lambda p, z: F.cosine_similarity(p.float(), z.float(), dim=-1)
  return (2 - 2 * cos(p1, z2)).mean() + (2 - 2 * cos(p2, z1)).mean()


def byol_workload(config, batch, device):
  """step(autocast) -> loss: two [B, 3, 32, 32] views through the online network (ResNet-18, projector,
  predictor) and the EMA target (ResNet-18, projector), BYOL's loss, SGD, then the target's EMA."""
  encoder = CifarResNet18()
  projector = mlp_head(encoder.num_features, config.projector.hidden_dim, config.projector.out_dim)
  online = nn.Sequential(encoder, projector).to(device).to(memory_format=torch.channels_last)
  predictor = mlp_head(config.projector.out_dim, config.predictor.hidden_dim, config.projector.out_dim).to(device)
  target = copy.deepcopy(online).requires_grad_(False)
  online_params, target_params = list(online.parameters()), list(target.parameters())
  opt = torch.optim.SGD([*online_params, *predictor.parameters()], lr=0.1, momentum=config.optim.momentum,
                        weight_decay=config.optim.weight_decay)
  views, tau = _views(batch, device), float(config.method.base_tau)

  def step(autocast):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      p = predictor(online(views))
      with torch.no_grad():
        zt = target(views)
      loss = byol_loss(p[:batch], p[batch:], zt[:batch], zt[batch:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
      torch._foreach_lerp_(target_params, online_params, 1.0 - tau)
    return loss
  return step


def _masked_batch(vocab, batch, seq_len, special, device, select=0.15):
  g = torch.Generator().manual_seed(0)
  ids = torch.randint(len(special) + 1, vocab, (batch, seq_len), generator=g)
  labels = torch.full_like(ids, -100)
  chosen = torch.rand(batch, seq_len, generator=g) < select
  labels[chosen] = ids[chosen]
  ids = ids.clone()
  ids[chosen] = special.get("mask", 4)
  return ids.to(device), labels.to(device)


def bert_workload(config, batch, device):
  from transformers import BertConfig, BertForMaskedLM

  m = config.model
  hf = BertConfig(vocab_size=m.vocab_size, hidden_size=m.dim, num_hidden_layers=m.depth, num_attention_heads=m.num_heads,
                  intermediate_size=m.mlp_dim, max_position_embeddings=m.max_len, hidden_dropout_prob=m.dropout,
                  attention_probs_dropout_prob=0.0, hidden_act="gelu", layer_norm_eps=1e-12)
  net = BertForMaskedLM(hf).to(device)
  opt = torch.optim.AdamW(net.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
  ids, labels = _masked_batch(m.vocab_size, batch, config.data.seq_len, dict(config.data.special_ids), device)
  mask = torch.ones_like(ids)

  def step(autocast):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      loss = net(input_ids=ids, attention_mask=mask, labels=labels).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss
  return step


def gpt_workload(config, batch, device):
  from transformers import GPT2Config, GPT2LMHeadModel

  m = config.model
  hf = GPT2Config(vocab_size=m.vocab_size, n_positions=m.max_len, n_embd=m.dim, n_layer=m.depth, n_head=m.num_heads,
                  n_inner=m.mlp_dim, resid_pdrop=m.dropout, embd_pdrop=m.dropout, attn_pdrop=0.0,
                  activation_function="gelu", layer_norm_epsilon=1e-5)
  net = GPT2LMHeadModel(hf).to(device)
  opt = torch.optim.AdamW(net.parameters(), lr=config.optim.lr, betas=(config.optim.b1, config.optim.b2),
                          weight_decay=config.optim.weight_decay)
  ids = torch.randint(0, m.vocab_size, (batch, config.data.seq_len), generator=torch.Generator().manual_seed(0))
  ids = ids.to(device)

  def step(autocast):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      loss = net(input_ids=ids, labels=ids).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss
  return step


WORKLOADS = {"simclr": simclr_workload, "byol": byol_workload, "bert": bert_workload, "gpt": gpt_workload}
