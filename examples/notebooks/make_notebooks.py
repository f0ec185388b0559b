"""Writes the notebooks beside this file from the cells below (without outputs: tests/test_notebooks.py
executes them). Edit here, then run `python examples/notebooks/make_notebooks.py`."""
from pathlib import Path

import nbformat as nbf


def nb(cells):
    book = nbf.v4.new_notebook()
    book.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}, "language_info": {"name": "python"}}
    book.cells = [nbf.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else nbf.v4.new_code_cell(c) for c in cells]
    return book

quick = [
"md:# learnloop quick start\n\nTrain a small network on MNIST, look at the loss and the learning-rate finder, save the model, load it back and predict. Set `QUICK = True` (the test does, through `LEARNLOOP_QUICK=1`) to run on 5,000 images.",
"""import os
import torch
from torch import nn
import learnloop as ll
from learnloop.datasets import mnist, mnist_dataloaders

QUICK = os.environ.get("LEARNLOOP_QUICK") == "1"
data = mnist()
if QUICK:
    data = data._replace(x_train=data.x_train[:5000], y_train=data.y_train[:5000])
ll.set_seed(42)
dls = mnist_dataloaders(batch_size=64, data=data, seed=42)   # normalised MNIST, flat 784-pixel rows
ll.show_batch(dls, n=8)""",
"md:A learner is a model, the data, a loss (cross-entropy by default), an optimizer and callbacks. The progress bar and the table below are drawn as HTML in a notebook.",
"""from learnloop.layers import mlp

model = mlp([784, 50, 10])   # Linear-ReLU-Linear, with its architecture noted so an export can rebuild it
learn = ll.Learner(model, dls, lr=0.1, metrics=[ll.accuracy])
learn.fit(2)""",
"""learn.recorder.plot_loss()""",
"md:The LR finder trains briefly with an exponentially growing learning rate and puts everything back afterwards.",
"""suggestions = learn.lr_find()
print(suggestions)
learn.plot_lr_find()""",
"""learn.fit_one_cycle(2, lr_max=suggestions["valley"] * 10)
learn.recorder.plot_sched()""",
"md:Predictions: logits, probabilities, decoded classes; one item with its class name.",
"""preds, targets, probs, decoded = learn.get_preds(with_probs=True, with_decoded=True)
print(f"accuracy {(decoded == targets).float().mean():.4f}")
learn.predict(dls.valid.dataset.tensors[0][0])""",
"md:Export the model with its preprocessing, load it back, and predict from raw uint8 pixels.",
"""learn.export("digits.safetensors")
predictor = ll.load_learner("digits.safetensors")
labels, p = predictor.predict(data.x_test[:5])
print(labels, data.y_test[:5].tolist())""",
]

lesson = [
"md:# Why sqrt(5)? Initialisation, measured (the lesson's notebooks 02a and 02b)\n\nPyTorch's default init for conv and linear layers is Kaiming-uniform with `a=sqrt(5)`. The lesson asks what that does to the scale of activations and gradients through a network, and compares it with Kaiming init for ReLU.",
"""import os
import torch
import torch.nn.functional as F
from torch import nn
from learnloop.datasets import mnist, MNIST_MEAN, MNIST_STD, normalize
from learnloop.diagnostics import init_report, layer_stats, matmul_experiment, sqrt5_net
from learnloop.init import init_model, kaiming_uniform_
from learnloop.plots import new_figure

data = mnist()
xb, yb = normalize(data.x_test[:100], MNIST_MEAN, MNIST_STD).view(-1, 1, 28, 28), data.y_test[:100].float()
mse = lambda out, y: F.mse_loss(out.squeeze(-1), y)""",
"md:## 02b: a hundred matrix products\n\nMultiply a vector by 100 random 512x512 matrices: with `randn` the scale explodes, scaled by 0.01 it vanishes, scaled by 1/sqrt(512) it stays put.",
"""fig = new_figure(6, 3.5)
ax = fig.add_subplot()
for scale, name in ((1.0, "randn"), (0.01, "randn * 0.01"), (512 ** -0.5, "randn / sqrt(512)")):
    stds = matmul_experiment(scale)
    ax.semilogy(range(1, len(stds) + 1), stds, label=name)
ax.set(xlabel="products", ylabel="std of the result", title="100 chained 512x512 products")
ax.legend()
fig""",
"md:## 02a: the lesson's 4-layer conv net, default init against Kaiming",
"""torch.manual_seed(0)
model = sqrt5_net()
default = layer_stats(model, xb, yb, mse)
init_model(model, kaiming_uniform_, bias=0.0)
kaiming = layer_stats(model, xb, yb, mse)
print(f"output std: default {default[-1]['act_std']:.4f}, Kaiming {kaiming[-1]['act_std']:.4f}")
print(f"first-layer gradient std: default {default[0]['grad_std']:.4f}, Kaiming {kaiming[0]['grad_std']:.4f}")""",
"""fig = new_figure(8, 3.5)
for i, key in enumerate(("act_std", "grad_std")):
    ax = fig.add_subplot(1, 2, i + 1)
    ax.plot([s[key] for s in default], "o-", label="PyTorch default")
    ax.plot([s[key] for s in kaiming], "o-", label="Kaiming-uniform")
    ax.set(xlabel="layer", title=key.replace("_", " "))
    ax.legend()
fig""",
"md:`init_report` says the same in words.",
"""torch.manual_seed(0)
print(init_report(sqrt5_net(), xb, yb, mse))""",
]
out = Path(__file__).resolve().parent
nbf.write(nb(quick), out / "quickstart.ipynb")
nbf.write(nb(lesson), out / "lesson09.ipynb")
