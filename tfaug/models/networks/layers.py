"""Import point of every custom Keras layer a saved sampling network may contain.

``keras.models.load_model`` can only rebuild layers whose classes are registered
(``keras.saving.register_keras_serializable(package="tfaug")``) before loading. Loaders import this module
first; each module below registers its layers when imported.
"""
from __future__ import annotations

# One import per module that defines registered layers used inside a sampling network.
import tfaug.models.networks.latent_layers  # noqa: F401,E402  (BAGAN, gan-bank)
import tfaug.models.networks.style  # noqa: F401,E402  (stylegan: modulated convolutions, noise, truncation)
import tfaug.models.networks.routing  # noqa: F401,E402  (adapted runs: class routing)
import tfaug.models.networks.age  # noqa: F401,E402  (adapted runs: AGE new-class networks)
import tfaug.models.networks.seeded  # noqa: F401,E402  (seed-taking wrapper of a sampling network)
import tfaug.models.networks.adjust  # noqa: F401,E402  (classifiers: post-hoc logit adjustment)
import tfaug.models.networks.classifiers  # noqa: F401,E402  (classifiers: the ensemble head)
import tfaug.models.networks.batchnorm  # noqa: F401,E402  (BatchNormalization: fused under mixed precision)
