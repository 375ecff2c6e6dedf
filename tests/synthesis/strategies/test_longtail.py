"""Long-tail training blocks: they parse into train options, travel with the mix, and become the trainer's
class weights / logit adjustment / balanced sampling (the losses themselves: tests/training/test_longtail.py)."""
import numpy as np
import pytest
from strategy_helpers import IMBALANCE, K, mix_of

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies import parse
from tfaug.training.longtail import class_counts, effective_number_weights, train_kwargs


def test_blocks_parse_into_train_options_and_compose():
    assert parse("reweight").train_options == {"reweight": 0.999}
    assert parse("classic+reweight:0.9").train_options == {"reweight": 0.9}
    assert parse("logit-adjust").train_options == {"logit_adjust": 1.0, "posthoc": False}
    assert parse("logit-adjust:2").train_options == {"logit_adjust": 2.0, "posthoc": False}
    assert parse("logit-adjust:posthoc").train_options == {"logit_adjust": 1.0, "posthoc": True}
    assert parse("logit-adjust:posthoc=0.5").train_options == {"logit_adjust": 0.5, "posthoc": True}
    both = parse("cdcgan+classic+reweight+balanced")
    assert both.train_options == {"reweight": 0.999, "balanced": True} and both.generator == "cdcgan"
    assert parse("classic").train_options == {}
    for bad in ("reweight:1", "reweight:-0.1", "reweight+reweight", "balanced:2", "logit-adjust:x",
                "logit-adjust:1=2", "logit-adjust+logit-adjust:posthoc", "m1+balanced"):
        with pytest.raises(TfaugError):
            parse(bad)


def test_the_mix_carries_the_options_and_they_become_trainer_arguments():
    mix, _ = mix_of("bootstrap+reweight:0.99+logit-adjust:posthoc", setting=IMBALANCE, counts=(10, 3, 8))
    assert mix.train_options == {"reweight": 0.99, "logit_adjust": 1.0, "posthoc": True}
    kw = train_kwargs(mix.train_options, mix.labels, K)
    # the weights follow the classes of the training MIX (here topped up by duplication: all 10)
    np.testing.assert_allclose(kw["class_weights"], effective_number_weights(class_counts(mix.labels, K), 0.99))
    np.testing.assert_allclose(kw["class_weights"], [1.0, 1.0, 1.0])
    assert (kw["logit_adjust_tau"], kw["posthoc"]) == (1.0, True) and "balanced" not in kw
    plain, _ = mix_of("baseline+reweight", setting=IMBALANCE, counts=(10, 3, 8))
    w = train_kwargs(plain.train_options, plain.labels, K)["class_weights"]
    assert w[1] > w[2] > w[0] and np.isclose(w.sum(), K)  # the rarest class weighs most
    assert train_kwargs({}, plain.labels, K) == {}
    assert train_kwargs({"balanced": True}, plain.labels, K) == {"balanced": True}
    with pytest.raises(TfaugError, match="unknown training option"):
        train_kwargs({"focal": 2}, plain.labels, K)
