"""Vision: training on folders of images with the lesson's data blocks (notebook 08).

Get the files, split them, label them, transform them, batch them:

    il = ImageList.from_files(path)
    sd = SplitData.split_by_func(il, grandparent_splitter())
    lsd = label_by_func(sd, parent_labeler)
    dls = lsd.to_dataloaders(batch_size=64, size=32)
"""

from .augment import (
    CenterCrop,
    GeneralCrop,
    PilRandomDihedral,
    PilRandomFlip,
    PilTiltRandomCrop,
    RandomCrop,
    RandomResizedCrop,
    RandomTransform,
    find_coeffs,
    np_to_float,
    split_tfms,
    warp,
)
from .batch_tfms import BatchAugment, RandomAffine, RandomErasing, rotate_batch, rotation_matrix, step_generator
from .blocks import (
    CategoryProcessor,
    ImageList,
    ItemList,
    LabeledData,
    SplitData,
    compose,
    func_splitter,
    grandparent_splitter,
    label_by_func,
    parent_labeler,
    random_splitter,
    regex_labeler,
)
from .files import UnreadableImageError, get_files, image_extensions
from .folders import folder_dataloaders
from .loaders import ImageDataset, default_workers, to_dataloaders
from .show import show_augmentations, show_batch, show_image
from .transforms import FloatNormalize, ResizeFixed, collate_images, to_byte_tensor, to_float_tensor

__all__ = [
    "BatchAugment",
    "CategoryProcessor",
    "CenterCrop",
    "FloatNormalize",
    "GeneralCrop",
    "ImageDataset",
    "ImageList",
    "ItemList",
    "LabeledData",
    "PilRandomDihedral",
    "PilRandomFlip",
    "PilTiltRandomCrop",
    "RandomAffine",
    "RandomCrop",
    "RandomErasing",
    "RandomResizedCrop",
    "RandomTransform",
    "ResizeFixed",
    "SplitData",
    "collate_images",
    "compose",
    "default_workers",
    "find_coeffs",
    "folder_dataloaders",
    "func_splitter",
    "get_files",
    "UnreadableImageError",
    "grandparent_splitter",
    "image_extensions",
    "label_by_func",
    "np_to_float",
    "parent_labeler",
    "random_splitter",
    "regex_labeler",
    "rotate_batch",
    "rotation_matrix",
    "show_augmentations",
    "show_batch",
    "show_image",
    "split_tfms",
    "step_generator",
    "to_byte_tensor",
    "to_dataloaders",
    "to_float_tensor",
    "warp",
]
