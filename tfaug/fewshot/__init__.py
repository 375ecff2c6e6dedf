"""Few-shot generation (issue 7): new classes from a handful of images with a pretrained generator.

* :mod:`tfaug.fewshot.adapt` -- ``tfaug adapt``: grow a pretrained conditional generator by one class and adapt
  it to 5-40 images of that class (``freeze`` = FreezeD-style fine-tuning, ``svd`` = train only the singular
  values of every kernel, ``embedding`` = learn only the new class embedding, ``age`` = no training: attribute
  group editing around the new class's inverted centroid). Old classes keep their exact images.
* :mod:`tfaug.fewshot.reparam` -- the parametrisations behind the methods (pure functions of a few trainable
  tensors, applied with ``keras.StatelessScope``).
* :mod:`tfaug.fewshot.invert` -- ``tfaug invert``: an encoder from images to a style generator's w (and class),
  plus optimisation-based refinement; reports reconstruction errors.
* :mod:`tfaug.fewshot.latent` -- the w-space toolkit shared by invert and age (statistics, sampling, per-image
  refinement).
* :mod:`tfaug.fewshot.age` -- AGE-style editing: per-class centroids in w, shared directions of within-class
  variation (SVD over many classes' deviations), new images = centroid + sampled combinations of directions.
* The registered Keras layers adapted sampling networks contain live with the other network layers:
  :mod:`tfaug.models.networks.routing` (class routing) and :mod:`tfaug.models.networks.age` (AGE new-class
  networks), imported by ``tfaug.models.networks.layers`` so saved networks load.
"""
