"""MoCo (v2 queue, v3 in-batch) and DINO losses against their formulas written out in NumPy (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import log_softmax
from sslax.losses import dino_center_update, dino_loss, moco_loss, moco_v3_loss, teacher_temperature_schedule


def _rand(*shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _ce(logits, target):
  logits = logits - logits.max(1, keepdims=True)
  return np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(len(logits)), target])


@pytest.mark.parametrize("temperature", [0.07, 0.2, 1.0])
def test_moco_loss_matches_formula(temperature):
  q, k, queue = _rand(8, 5, seed=1), _rand(8, 5, seed=2), _unit(_rand(32, 5, seed=3))
  qn, kn = _unit(q), _unit(k)
  logits = np.concatenate([np.sum(qn * kn, 1, keepdims=True), qn @ queue.T], 1) / temperature
  loss, aux = moco_loss(jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), temperature=temperature)
  np.testing.assert_allclose(float(loss), _ce(logits, np.zeros(8, int)), rtol=1e-5)
  assert float(aux["accuracy"]) == np.mean(np.argmax(logits, 1) == 0)
  # keys and queue carry no gradient
  gk, gqueue = jax.grad(lambda k, u: moco_loss(jnp.asarray(q), k, u)[0], argnums=(0, 1))(
      jnp.asarray(k), jnp.asarray(queue))
  assert float(jnp.abs(gk).max()) == 0.0 and float(jnp.abs(gqueue).max()) == 0.0


def test_moco_v3_loss_matches_formula():
  q1, q2, k1, k2 = (_rand(8, 5, seed=i) for i in range(4))
  t = 0.2

  def ctr(q, k):
    return _ce(_unit(q) @ _unit(k).T / t, np.arange(8)) * 2 * t

  loss, _ = moco_v3_loss(*map(jnp.asarray, (q1, q2, k1, k2)), temperature=t)
  np.testing.assert_allclose(float(loss), ctr(q1, k2) + ctr(q2, k1), rtol=1e-5)


@pytest.mark.parametrize("num_local", [0, 3])
def test_dino_loss_matches_the_reference_double_loop(num_local):
  n, k = 6, 10
  student, teacher, center = _rand(2 + num_local, n, k, seed=1), _rand(2, n, k, seed=2), _rand(k, seed=3) * 0.1
  ts, tt = 0.1, 0.04
  # As DINOLoss.forward: every (teacher view iq, student view v) with v != iq.
  p_t = np.exp(log_softmax((teacher - center) / tt))
  total, terms = 0.0, 0
  for iq in range(2):
    for v in range(2 + num_local):
      if v == iq:
        continue
      total += np.mean(np.sum(-p_t[iq] * log_softmax(student[v] / ts), -1))
      terms += 1
  loss, aux = dino_loss(jnp.asarray(student), jnp.asarray(teacher), jnp.asarray(center),
                        student_temperature=ts, teacher_temperature=tt)
  np.testing.assert_allclose(float(loss), total / terms, rtol=1e-5)
  entropy = -np.mean(np.sum(p_t * np.log(p_t), -1))
  np.testing.assert_allclose(float(aux["teacher_entropy"]), entropy, rtol=1e-4)
  g = jax.grad(lambda t: dino_loss(jnp.asarray(student), t, jnp.asarray(center))[0])(jnp.asarray(teacher))
  assert float(jnp.abs(g).max()) == 0.0  # the teacher carries no gradient


def test_dino_center_and_teacher_temperature():
  center, teacher = _rand(10, seed=0), _rand(2, 6, 10, seed=1)
  new = dino_center_update(jnp.asarray(center), jnp.asarray(teacher), momentum=0.9)
  np.testing.assert_allclose(np.asarray(new), 0.9 * center + 0.1 * teacher.reshape(-1, 10).mean(0), rtol=1e-5)
  temps = [float(teacher_temperature_schedule(s, warmup_temperature=0.04, temperature=0.07, warmup_steps=10))
           for s in (0, 5, 10, 20)]
  np.testing.assert_allclose(temps, [0.04, 0.055, 0.07, 0.07], rtol=1e-6)


def test_dino_loss_rejects_bad_shapes():
  with pytest.raises(ValueError, match="dino_loss: expected teacher"):
    dino_loss(jnp.zeros((1, 4, 8)), jnp.zeros((2, 4, 8)), jnp.zeros(8))
