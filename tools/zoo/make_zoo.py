#!/usr/bin/env python3
"""The model zoo for tests and benchmarks: torchvision 0.14 architectures, exported to ONNX.

Each network gets seeded random weights (torchvision's own initialisation), then its BatchNorm
statistics are re-estimated on real ImageNet images (train-mode BN, cumulative averaging, no
gradient), so its activations look like a trained network's. Each is exported twice at opset 13:

  NAME.onnx       the default export (BN folded into the convolutions)
  NAME_bn.onnx    BatchNormalization kept (TrainingMode.PRESERVE, no constant folding)

  tools/zoo/make_zoo.py OUT_DIR [--models a,b] [--size 224] [--images 128] [--data DIR]

Nothing is downloaded: the weights are random, the images are ../shared/data/imagenet/sample1000.
A model already made with the same size, images and seed (MANIFEST.json) is kept.
"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision
from PIL import Image

# name -> constructor; what each one brings to the importer and the runtime.
MODELS = {
    "resnet18": torchvision.models.resnet18,  # MaxPool (padding), residual Add, Gemm
    "resnet50": torchvision.models.resnet50,  # bottlenecks, projection shortcuts
    "mobilenet_v3_large": torchvision.models.mobilenet_v3_large,  # HardSwish, SE (HardSigmoid)
    "efficientnet_b0": torchvision.models.efficientnet_b0,  # SiLU (Sigmoid·Mul), SE (Sigmoid)
    "regnet_y_400mf": torchvision.models.regnet_y_400mf,  # grouped conv, SE
    "shufflenet_v2_x1_0": torchvision.models.shufflenet_v2_x1_0,  # Split, channel shuffle
    "densenet121": torchvision.models.densenet121,  # Concat, AveragePool
    "mobilenet_v2": torchvision.models.mobilenet_v2,  # ReLU6 (Clip), depthwise
}
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def images(folder, count, size):
    t = torchvision.transforms
    pre = t.Compose([t.Resize(size * 256 // 224), t.CenterCrop(size), t.ToTensor(),
                     t.Normalize(MEAN, STD)])
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith((".jpeg", ".jpg", ".png")))
    if len(files) < count:
        sys.exit(f"make_zoo: {folder} has {len(files)} images, {count} needed")
    return torch.stack([pre(Image.open(os.path.join(folder, f)).convert("RGB"))
                        for f in files[:count]])


def estimate_bn(model, x, batch=32):
    """Re-estimates every BatchNorm's running mean and variance on x (cumulative average)."""
    model.eval()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all batches
        m.train()
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            model(x[i:i + batch])
    model.eval()


def export(model, path, size, keep_bn):
    x = torch.zeros(1, 3, size, size)
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    tmp = path + ".tmp"
    torch.onnx.export(model, x, tmp, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      training=mode, do_constant_folding=not keep_bn)
    os.replace(tmp, path)  # a run stopped half-way leaves no truncated model behind


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    p.add_argument("--size", type=int, default=224, help="input height and width")
    p.add_argument("--images", type=int, default=128, help="images for the BN statistics")
    p.add_argument("--data", default=os.path.join(here, "../../../shared/data/imagenet/sample1000"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-without-data", action="store_true",
                   help="exit 0, making nothing, when --data is absent (the tests then skip)")
    a = p.parse_args()
    if not os.path.isdir(a.data):
        print(f"make_zoo: no images at {a.data} (../shared/data); no zoo made", flush=True)
        sys.exit(0 if a.skip_without_data else 1)
    names = a.models.split(",")
    for n in names:
        if n not in MODELS:
            sys.exit(f"make_zoo: unknown model '{n}'; known: {', '.join(MODELS)}")
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    x = None
    old = {}
    try:
        with open(os.path.join(a.out, "MANIFEST.json")) as f:
            old = json.load(f)
    except (OSError, ValueError):
        pass
    same = all(old.get(k) == v for k, v in (("size", a.size), ("images", a.images), ("seed", a.seed)))
    manifest = {"size": a.size, "images": a.images, "seed": a.seed, "mean": MEAN, "std": STD,
                "torch": torch.__version__, "torchvision": torchvision.__version__,
                "models": old.get("models", {}) if same else {}}
    for name in names:
        paths = [os.path.join(a.out, name + ".onnx"), os.path.join(a.out, name + "_bn.onnx")]
        entry = {"files": [os.path.basename(q) for q in paths]}
        if same and name in old.get("models", {}) and all(os.path.exists(q) for q in paths):
            entry = old["models"][name]
            print(f"make_zoo: {name}: present", flush=True)
        else:
            start = time.time()
            if x is None:
                x = images(a.data, a.images, a.size)
            torch.manual_seed(a.seed + list(MODELS).index(name))  # same weights in any subset
            model = MODELS[name]()
            estimate_bn(model, x)
            export(model, paths[0], a.size, keep_bn=False)
            export(model, paths[1], a.size, keep_bn=True)
            entry["seconds"] = round(time.time() - start, 1)
            print(f"make_zoo: {name}: {entry['seconds']} s", flush=True)
        manifest["models"][name] = entry
        with open(os.path.join(a.out, "MANIFEST.json.tmp"), "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(os.path.join(a.out, "MANIFEST.json.tmp"), os.path.join(a.out, "MANIFEST.json"))


if __name__ == "__main__":
    main()
