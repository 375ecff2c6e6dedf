"""Enrichment strategies: how a training set is built from the real draw before a classifier sees it.

A strategy is ONE object (:class:`Strategy`, from :func:`parse`): it parses its text, declares what it ``needs``
(generators, encoder, judge, teacher classifier, the unused real pool) and ``build(draw, counts, resources)`` makes
the :class:`TrainingMix`. The study runner, its executors, ``tfaug train-classifier`` and ``tfaug demo`` only ask it.

A strategy is a ``+``-joined list of registered building blocks (``base.register``; one module per family):

- ``baseline``              the real images only;
- ``bootstrap[:F]``         duplicate randomly chosen originals until the set is F times its size (default 4, S1);
                            in an imbalance regime without F: duplicate every class up to the majority count;
- ``classic[:PRESET]``      classic augmentation on the fly (presets in ``tfaug.augment.classic``);
- ``extra-real[:R]``        the control: R more *real* images per real image (default 1) from the unused pool; in an
                            imbalance regime without R: real images of each class up to the majority (S5's
                            "balanced original"); in a grid: as many real images as the grid's synthetic count;
- ``MODEL[:R]``             any zoo model (``cdcgan``, ``bagan``, ``cvae`` ...): R generated images per real image,
                            per class (default 1; imbalance regime without R: top every class up to the majority;
                            grid: the grid's synthetic count), from a generator trained on this draw only;
- ``filter:NAME``           filter the generated images (a named filter of the study, or a filter spec such as
                            ``variance`` or ``consistency:0.9``); generation over-samples to keep the count;
- ``synthetic-only[:MODEL]`` train on generated images only (classification accuracy score, CAS);
- ``curriculum[:MODEL]``    pre-train on generated images, then fine-tune on the real ones (S4);
- ``source-flag[:MODEL]``   real + generated with an extra input channel flagging generated images (S4; test
                            images carry flag 0);
- ``reweight[:beta]``, ``logit-adjust[:tau|posthoc[=tau]]``, ``balanced``: long-tail training controls
                            (class-balanced loss, logit adjustment, class-balanced sampling; ``longtail``);
- ``soft[:T]``, ``weight:W``, ``swap:P``, ``sepbn``: how generated images enter training (teacher soft targets,
                            loss weight in fixed-proportion batches, real-image substitution, own BatchNorm; ``mixing``);
                            ``filter:teacher[:C]`` keeps generated images the draw's teacher gives >= C (default 0.5);
- ``disc-bank``, ``m1``..``m4`` S3's classifiers built from per-class generators instead of a trained CNN
                            (``m1:m=100,L=3`` overrides the study's ``methods`` parameters); alone only.

- ``recommended``           an alias (``tfaug.synthesis.strategies.recommended``): ``cdcgan+soft+sepbn+classic``,
                            chosen on validation columns of ``configs/fewshot-mnist.yaml``; composes like a block.

e.g. ``cdcgan+classic``, ``bootstrap:2+classic:objects``, ``bagan+filter:consistency``. Unknown blocks are
errors that name the block and list the known ones.

Count rules (``synthetic_counts``): per_class regime ``round(ratio * n_c)`` images for a class with ``n_c`` real
ones (rounding half up); imbalance regime without an explicit ratio: every class topped up to the majority count
(bootstrap by duplication, generators by generated images); grid regime: the setting's synthetic total spread
evenly over the classes (remainder to the lowest class ids). ``extra-real`` adds the same numbers of real images;
``synthetic-only`` as many generated images per class as the real draw has (imbalance: the majority count; grid:
the synthetic count). Every row records its source (``TrainingMix.groups``) so that no copy or generated image can
cross a split or CV fold from its source. Everything is deterministic given the draw's seed.
"""
from tfaug.synthesis.strategies.base import (Block, Needs, Resources, Strategy, block_names, blocks, model_names, parse,
                                             register, unregister)
from tfaug.synthesis.strategies.mix import Counts, Draw, MixState, TrainingMix, add_flag, build, synthetic_counts
from tfaug.synthesis.strategies import real, generative, methods, longtail, mixing  # noqa: E402,F401 - registers the shipped blocks
from tfaug.synthesis.strategies import recommended  # noqa: E402,F401 - registers the `recommended` alias
from tfaug.synthesis.strategies.generative import OVERSAMPLE, ROUNDS  # noqa: E402
from tfaug.synthesis.strategies.methods import METHODS  # noqa: E402

__all__ = ["Block", "Counts", "Draw", "METHODS", "MixState", "Needs", "OVERSAMPLE", "ROUNDS", "Resources", "Strategy",
           "TrainingMix", "add_flag", "block_names", "blocks", "build", "model_names", "parse", "register",
           "synthetic_counts", "unregister"]
