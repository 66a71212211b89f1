#!/usr/bin/env python3
"""How much the zoo's float networks amplify small perturbations (why their W8A8 error is large).

Per model: the relative logit change ||g - f|| / ||f|| and argmax agreement on 32 sample1000
images when (a) uniform noise of 1/255 of each conv/linear input's max is added at every such
input, (b) every weight is rounded to a per-channel 8-bit max-scale grid; the float model alone.
  /usr/bin/python3 tools/zoo/perturbation.py [--size 160] [--models resnet18,resnet50,...]
"""
import argparse
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_zoo as mz  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--models", default="resnet18,resnet50,mobilenet_v2,efficientnet_b0")
    p.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "../../../shared/data/imagenet/sample1000"))
    a = p.parse_args()
    torch.manual_seed(0)
    x = mz.images(a.data, 64, a.size)
    xe = x[32:]
    rel = lambda g, f: ((g - f).norm() / f.norm()).item()
    agree = lambda g, f: 100 * (g.argmax(1) == f.argmax(1)).float().mean().item()
    for name in a.models.split(","):
        torch.manual_seed(list(mz.MODELS).index(name))  # the zoo's weights
        m = mz.MODELS[name]()
        mz.estimate_bn(m, x)
        layers = [l for l in m.modules() if isinstance(l, (torch.nn.Conv2d, torch.nn.Linear))]
        with torch.no_grad():
            f = m(xe)

            def noise(_, inputs):
                t = inputs[0]
                return (t + (torch.rand_like(t) - 0.5) * t.abs().amax() / 127.0,)

            hooks = [l.register_forward_pre_hook(noise) for l in layers]
            g = m(xe)
            for h in hooks:
                h.remove()
            w8 = copy.deepcopy(m)
            for l in w8.modules():
                if isinstance(l, (torch.nn.Conv2d, torch.nn.Linear)):
                    w = l.weight
                    s = w.abs().flatten(1).amax(1).view(-1, *([1] * (w.dim() - 1))) / 127
                    l.weight.copy_((w / s).round() * s)
            h8 = w8(xe)
        print(f"{name}: activation noise {100 * rel(g, f):.1f} % (argmax {agree(g, f):.0f} %), "
              f"8-bit weights {100 * rel(h8, f):.1f} % (argmax {agree(h8, f):.0f} %)", flush=True)


if __name__ == "__main__":
    main()
