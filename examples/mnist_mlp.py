"""The lesson's first model: a 784-50-10 MLP on MNIST, trained by the Learner with callbacks.

    python examples/mnist_mlp.py

Shows the pieces a reader of the lesson meets: DataLoaders over in-memory tensors, a callback
that watches the loop (here: stop early once validation accuracy is good enough), metrics, the
recorder's plots, and inference.
"""

from torch import nn

import learnloop as ll
from learnloop.datasets import mnist_dataloaders


class StopAtAccuracy(ll.Callback):
    """Ends training once validation accuracy reaches `target` (cancellation as control flow)."""

    order = 95  # after the Recorder (50) has written the epoch's numbers

    def __init__(self, target: float):
        self.target = target

    def after_epoch(self, learn):
        if learn.recorder.history[-1]["accuracy"] >= self.target:
            print(f"reached {self.target:.0%} after epoch {learn.epoch}: stopping")
            raise ll.CancelFitException


ll.set_seed(42)
dls = mnist_dataloaders(batch_size=64)
model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
learn = ll.Learner(model, dls, lr=0.1, metrics=[ll.accuracy], cbs=[StopAtAccuracy(0.97)])
learn.show_order()
learn.fit(10)

learn.recorder.plot_loss(path="mnist_mlp_loss.png")
x_valid, y_valid = dls.valid.dataset.tensors
predicted = learn.infer(x_valid[:10]).argmax(dim=-1)
print("predicted:", predicted.tolist())
print("actual:   ", y_valid[:10].tolist())
