"""Modality synthesis with pix2pix (Isola et al. 2017): a U-Net generator and a 70x70 PatchGAN discriminator learn
to map one channel of a dataset (e.g. T2) to another (e.g. TOF); the synthetic channel can then be added to a dataset
as an extra input channel. See docs/synthesis.md.

Python API:

- :func:`versaseg.synthesis.train.train_synthesis` (config: :class:`versaseg.synthesis.config.SynthConfig`)
- :func:`versaseg.synthesis.apply.load_synthesizer`, :func:`~versaseg.synthesis.apply.synthesize`,
  :func:`~versaseg.synthesis.apply.apply_to_file`, :func:`~versaseg.synthesis.apply.augment_dataset`
- :func:`versaseg.synthesis.metrics.image_quality`
"""
