"""TensorBoard logs, losses.png and the grey-samples hint of training runs (tfaug.training.tensorboard)."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from tfaug.config import ClassifierConfig, GANConfig
from tfaug.training.gan_runner import train_gan
from tfaug.training.tensorboard import GANBoard, is_grey, plot_losses

CFG = GANConfig(steps=6, batch_size=16, width=8, z_dim=8, sample_every=3, checkpoint_every=0, diffaugment="",
                ada_target=0.6, g_lr=3e-4, d_lr=1e-4)


def read_events(log_dir):
    """{tag: {step: value}} of every event file under log_dir (images: their [width, height] as ints)."""
    import tensorflow as tf

    out = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for v in event.summary.value:
                value = tf.make_ndarray(v.tensor)
                if v.metadata.plugin_data.plugin_name == "images":
                    value = [int(value[0]), int(value[1])]
                out.setdefault(v.tag, {})[int(event.step)] = value.item() if np.ndim(value) == 0 else value
    return out


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    from tests_helpers import toy_images

    x, y = toy_images()
    d = tmp_path_factory.mktemp("tb") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 6-step run's grey-samples hint (tested below)
        train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=d, progress=False, log_every=2)
    return d


def test_gan_scalars_match_the_history(gan_run):
    events = read_events(gan_run / "tensorboard")
    history = [json.loads(line) for line in (gan_run / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history] == [2, 4, 6]
    for record in history:
        for key, value in record.items():
            if key in ("step", "time_s"):
                continue
            tag = "ada/p" if key == "ada_p" else f"loss/{key}"
            assert events[tag][record["step"]] == pytest.approx(value, rel=1e-6), tag
    assert {"loss/d_loss", "loss/g_loss", "ada/p"} <= set(events)
    for name, lr in (("d", CFG.d_lr), ("g", CFG.g_lr)):
        assert events[f"learning_rate/{name}"] == {s: pytest.approx(lr) for s in (2, 4, 6)}


def test_gan_sample_grids_are_images_every_sample_every(gan_run):
    events = read_events(gan_run / "tensorboard")
    assert sorted(events["samples"]) == [3, 6]  # step 3 (sample_every) and the final grid
    width, height = events["samples"][6]
    with Image.open(gan_run / "samples" / "final.png") as im:
        assert (width, height) == im.size


def test_losses_png_plots_the_history(gan_run, tmp_path):
    with Image.open(gan_run / "losses.png") as im:
        assert im.format == "PNG" and im.size[0] >= 300
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 5  # axes, lines and labels, not a blank canvas
    plot_losses([{"step": 1, "g_loss": 1.0}, {"step": 2, "g_loss": 0.5, "ada_p": 0.1}], tmp_path / "l.png")
    with Image.open(tmp_path / "l.png") as im:
        assert im.size[1] > 400  # a second panel for ADA's p


def test_is_grey():
    rng = np.random.default_rng(0)
    assert is_grey(np.zeros((4, 8, 8, 1)))
    assert is_grey(rng.normal(0, 0.01, (4, 8, 8, 1)))
    assert not is_grey(rng.uniform(-1, 1, (4, 8, 8, 3)))
    assert not is_grey(np.zeros((0, 8, 8, 1)))


class _FakeModel:
    def __init__(self, images):
        self.images = images

    def optimizers(self):
        return {}

    def sample(self, class_ids, seeds):
        return self.images[: len(class_ids)]


@pytest.mark.parametrize("grey", [True, False])
def test_finish_hints_only_when_the_final_samples_are_grey(tmp_path, grey):
    rng = np.random.default_rng(1)
    images = np.zeros((3, 8, 8, 1), np.float32) if grey else rng.uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    board = GANBoard(tmp_path, _FakeModel(images))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        board.finish([{"step": 5, "g_loss": 1.0}], 5, [0, 1, 2])
    hints = [str(w.message) for w in caught if "grey" in str(w.message)]
    assert len(hints) == (1 if grey else 0)
    if grey:
        assert "after 5 steps" in hints[0] and "--steps" in hints[0] and "\n" not in hints[0]
    assert (tmp_path / "losses.png").is_file()


def test_classifier_logs_loss_and_accuracy_every_step(tmp_path):
    from tests_helpers import toy_images
    from tfaug.training.classifier import train_classifier

    x, y = toy_images()
    cfg = ClassifierConfig(name="small_cnn", steps=4, batch_size=16, width=4)
    res = train_classifier(x, y, num_classes=3, cfg=cfg, log_dir=tmp_path / "tb",
                           pretrain=(x[:20], y[:20], 2))
    events = read_events(tmp_path / "tb" / "train")
    assert sorted(events["batch_loss"]) == sorted(events["batch_accuracy"]) == [1, 2, 3, 4]
    assert events["batch_loss"][4] == pytest.approx(res.history["loss"][-1], rel=1e-5)
    assert events["batch_accuracy"][4] == pytest.approx(res.history["accuracy"][-1], rel=1e-5)
    assert all(0.0 <= a <= 1.0 for a in events["batch_accuracy"].values())
    pre = read_events(tmp_path / "tb" / "pretrain" / "train")
    assert sorted(pre["batch_loss"]) == [1, 2]
    assert pre["batch_loss"][2] == pytest.approx(res.history["pretrain_loss"][-1], rel=1e-5)
