"""TERA (Liu et al., IEEE/ACM TASLP 2021): Mockingjay's model and loss with two more alterations.

Time masking as Mockingjay, plus frequency masking (a band of up to
`method.mask_frequency` of the bins zeroed over the whole utterance, its bins
reconstructed) and magnitude alteration (Gaussian noise of std 0.2 on all
frames of `method.noise_proportion` of the utterances): s3prl's
`logMelBase-T-F-M` (0.15 / 7, 0.2, 0.15). Only the config differs from
`sslax.methods.mockingjay`; this module names the method and checks that the
alterations are on.
"""
from __future__ import annotations

from sslax.config import check_config_value
from sslax.methods.base import MethodCard, register
from sslax.methods.mockingjay import Mockingjay


@register("tera")
class TERA(Mockingjay):
  card = MethodCard(
      family="masked prediction",
      paper="Liu et al. 2021, [TERA](https://arxiv.org/abs/2007.06028)",
      objective="l1 reconstruction of log-mel frames altered in time (masked spans), frequency (a masked band) "
                "and magnitude (Gaussian noise), on the altered positions",
      loss="sslax.losses.frames.masked_l1",
      reference="s3prl `pretrain/tera` (`logMelBase-T-F-M.yaml`)",
      tests=("tests/test_speech_frames.py::test_smoke_pretrain_then_probe",
             "tests/test_speech_frames.py::test_alterations_match_the_reference_statistics"),
      results=("Speech methods on spoken digits", "MFCC", "TERA at random init", "TERA pretrained"))

  def check_config(self):
    super().check_config()
    check_config_value(self.config, "method.mask_frequency", lambda v: 0 < v < 1,
                       "a number in (0, 1): TERA's frequency alteration (0 is Mockingjay)")
