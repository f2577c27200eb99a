"""Multi-scale voxel features: count, values on simple images, anisotropic spacing in mm."""

from __future__ import annotations

import numpy as np

from versaseg.data.voxel_features import features_per_channel, image_features


def test_constant_image_has_flat_smoothings_and_no_edges():
    image = np.full((2, 12, 10, 8), 3.0, np.float32)
    feats = image_features(image, (1.0, 1.0, 2.0))
    assert feats.shape == (2 * features_per_channel(), 12, 10, 8) and feats.dtype == np.float32
    per = features_per_channel()
    np.testing.assert_allclose(feats[:4], 3.0, atol=1e-5)  # intensity and its three smoothings
    np.testing.assert_allclose(feats[4:per], 0.0, atol=1e-3)  # gradients and Laplacian vanish (float32 kernels)
    np.testing.assert_allclose(feats[per], 3.0, atol=1e-5)  # the second channel starts its own block


def test_gradient_peaks_at_an_edge_and_sigma_is_in_mm():
    image = np.zeros((1, 40, 8, 8), np.float32)
    image[0, 20:] = 1.0  # an edge between x = 19 and 20
    fine = image_features(image, (1.0, 1.0, 1.0))[4]  # gradient magnitude at 1.5 mm
    assert abs(int(np.argmax(fine[:, 4, 4])) - 19.5) <= 0.5
    coarse_voxels = image_features(image, (3.0, 1.0, 1.0))[4]  # same sigma in mm = half a voxel at 3 mm spacing
    profile_fine, profile_coarse = fine[:, 4, 4], coarse_voxels[:, 4, 4]
    # in voxels the 3 mm spacing blurs less: the edge response is narrower
    assert (profile_coarse > 0.5 * profile_coarse.max()).sum() < (profile_fine > 0.5 * profile_fine.max()).sum()
