"""How the few-shot control's recipe was explored (issue 15): validation accuracy on MNIST pool images, never the
test half.

mnist10k is permuted (seed 123) and halved; the second half (the benchmark's kind of test set) is never read. From
the first half (the pool) each draw takes k images per class for training and 2,000 other pool images for
validation. The network is a residual BN CNN (``--arch res``, the shape of ``res_cnn``) or tfaug's ``small_cnn``,
trained with AdamW (``--wd``), warm-up + cosine decay, label smoothing (``--ls``) and a classic augmentation spec.
Prints one JSON line. Exploration, not results: ``benchmarks/controls.py`` measures the chosen preset.

    python benchmarks/recipe_explore.py --k 10 --steps 600 --width 16 --draws 2
"""
import os, time, json, argparse
os.environ.setdefault("KERAS_BACKEND", "tensorflow"); os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
p = argparse.ArgumentParser()
p.add_argument("--k", type=int, default=10); p.add_argument("--steps", type=int, default=1500)
p.add_argument("--batch", type=int, default=64); p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--wd", type=float, default=5e-4); p.add_argument("--ls", type=float, default=0.1)
p.add_argument("--aug", default="classic:rotation=0.05,translation=0.1,zoom=0.1,fill=constant")
p.add_argument("--width", type=int, default=32); p.add_argument("--draws", type=int, default=2)
p.add_argument("--arch", default="res"); p.add_argument("--drop", type=float, default=0.3)
p.add_argument("--dataset", default="mnist"); p.add_argument("--threads", type=int, default=1)
p.add_argument("--ens", type=int, default=1); p.add_argument("--tta", type=int, default=0)
a = p.parse_args()
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(a.threads); tf.config.threading.set_inter_op_parallelism_threads(a.threads)
import keras
from keras import layers
from tfaug.augment.classic import build_augmenter
from tfaug.data.pipeline import make_pipeline
if a.dataset == "mnist":
    from pathlib import Path

    d = np.load(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist10k.npz"); x, y = d["x"][..., None], d["y"].astype(np.int32)
else:
    from tfaug.data.sources import load_dataset
    ds = load_dataset(a.dataset); x, y = ds.images, ds.labels
K = int(y.max()) + 1
rng = np.random.default_rng(123); perm = rng.permutation(len(x)); x, y = x[perm], y[perm]
half = len(x) // 2
xp, yp = x[:half], y[:half]   # pool (test half x[half:] never used)
def block(h, ch, name):
    s = h
    h = layers.Conv2D(ch, 3, padding="same", use_bias=False)(h); h = layers.BatchNormalization(momentum=0.9)(h); h = layers.ReLU()(h)
    h = layers.Conv2D(ch, 3, padding="same", use_bias=False)(h); h = layers.BatchNormalization(momentum=0.9)(h)
    if s.shape[-1] != ch:
        s = layers.Conv2D(ch, 1, use_bias=False)(s); s = layers.BatchNormalization(momentum=0.9)(s)
    return layers.ReLU()(layers.Add()([h, s]))
def build(shape):
    inp = keras.Input(shape); h = inp
    if a.arch == "res":
        h = layers.Conv2D(a.width, 3, padding="same", use_bias=False)(h); h = layers.BatchNormalization(momentum=0.9)(h); h = layers.ReLU()(h)
        side = min(shape[0], shape[1]); ch = a.width
        while True:
            h = block(h, ch, "")
            if side <= 4: break
            h = layers.MaxPooling2D(2, padding="same")(h); side = (side + 1) // 2; ch = min(ch * 2, a.width * 4)
    else:
        from tfaug.models.networks.classifiers import build_classifier
        return build_classifier("small_cnn", shape, K, width=a.width, dropout=a.drop)
    h = layers.GlobalAveragePooling2D()(h)
    if a.drop: h = layers.Dropout(a.drop)(h)
    return keras.Model(inp, layers.Dense(K)(h))
accs = []; t0 = time.time()
for draw in range(a.draws):
    r = np.random.default_rng(draw)
    tr = np.concatenate([r.choice(np.flatnonzero(yp == c), a.k, replace=False) for c in range(K)])
    rest = np.setdiff1d(np.arange(len(xp)), tr)
    va = r.choice(rest, min(2000, len(rest)), replace=False)
    probs = 0
    for m in range(a.ens):
        seed = draw * 100 + m
        keras.utils.set_random_seed(seed)
        model = build(xp.shape[1:])
        sched = keras.optimizers.schedules.CosineDecay(a.lr * 0.1, a.steps - a.steps // 20, alpha=0.0, warmup_target=a.lr, warmup_steps=a.steps // 20)
        opt = keras.optimizers.AdamW(sched, weight_decay=a.wd) if a.wd else keras.optimizers.Adam(sched)
        model.compile(opt, keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=a.ls), jit_compile=False)
        aug = build_augmenter(a.aug, seed=seed) if a.aug != "none" else None
        pipe = make_pipeline(xp[tr], yp[tr], min(a.batch, len(tr)), seed=seed, augment=aug, repeat=True, drop_remainder=True)
        pipe = pipe.map(lambda im, lab: (im, tf.one_hot(lab, K)))
        model.fit(pipe, epochs=1, steps_per_epoch=a.steps, verbose=0)
        xv = xp[va].astype(np.float32) / 127.5 - 1
        pr = tf.nn.softmax(model.predict(xv, batch_size=512, verbose=0)).numpy()
        if a.tta:
            for t in range(a.tta):
                pr = pr + tf.nn.softmax(model.predict(np.asarray(aug(xv, training=True)), batch_size=512, verbose=0)).numpy()
        probs = probs + pr
    accs.append(float(np.mean(np.argmax(probs, 1) == yp[va])))
print(json.dumps({**vars(a), "acc": round(float(np.mean(accs)), 4), "accs": [round(v, 4) for v in accs], "sec": round(time.time() - t0, 1)}))
