"""L2 regularisation against decoupled weight decay: where they coincide and where they differ.

    python examples/weight_decay.py

Trains the 784-50-10 MLP on MNIST for one epoch from the same initial weights and batch order
with each optimizer twice, wd=0.01 as L2 (added to the gradient) and as decoupled weight decay
(shrinking the weights directly), and prints the largest weight difference between the two runs,
the weights' norm, and the validation accuracy.
"""

import torch
from torch import nn

import learnloop as ll
from learnloop import optim
from learnloop.datasets import mnist_dataloaders

torch.set_num_threads(1)
setups = {
    "SGD": lambda decouple: (lambda p, lr: optim.SGD(p, lr=lr, wd=1e-2, decouple_wd=decouple), 0.1),
    "SGD + momentum": lambda decouple: (lambda p, lr: optim.SGD(p, lr=lr, mom=0.9, wd=1e-2, decouple_wd=decouple), 0.01),
    "Adam": lambda decouple: (lambda p, lr: optim.Adam(p, lr=lr, wd=1e-2, decouple_wd=decouple), 1e-3),
}
data = None
print(f"{'optimizer':<16}{'max |w_L2 - w_decoupled|':>26}{'norm L2':>10}{'norm dec.':>11}{'acc L2':>9}{'acc dec.':>10}")
for name, setup in setups.items():
    results = {}
    for decouple in (False, True):
        ll.set_seed(0)
        dls = mnist_dataloaders(batch_size=64, seed=0)
        model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
        opt_func, lr = setup(decouple)
        learn = ll.Learner(model, dls, opt_func=opt_func, lr=lr, metrics=[ll.accuracy], progress=False)
        learn.fit(1)
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        results[decouple] = (weights, learn.recorder.history[-1]["accuracy"])
    (w_l2, acc_l2), (w_dec, acc_dec) = results[False], results[True]
    diff = (w_l2 - w_dec).abs().max().item()
    print(f"{name:<16}{diff:>26.2e}{w_l2.norm().item():>10.3f}{w_dec.norm().item():>11.3f}{acc_l2:>9.4f}{acc_dec:>10.4f}")
