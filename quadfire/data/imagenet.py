"""ImageNet (ILSVRC-2012) from the standard class-folder layout::

    <root>/imagenet/train/<wnid>/*.JPEG
    <root>/imagenet/val/<wnid>/*.JPEG

The official validation images ship in one flat folder; they must first be sorted into the
same class folders as train/ (e.g. with the ``valprep.sh`` script widely used for this).
Samples are float32 ``[3, 224, 224]`` (see `transforms.imagenet_transforms`).
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision.datasets import ImageFolder

from .config import DataConfig
from .registry import DatasetEntry, DatasetInfo, register_dataset
from .transforms import imagenet_transforms
from ..errors import DataError, DataNotFoundError


def load_rgb(path: str) -> Image.Image:
    """Decode one image file as RGB; a corrupt or truncated file is named in the error."""
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise DataError(f"corrupt or truncated image file {path}: {e}") from e


def _image_folder(folder: Path, transform) -> ImageFolder:
    if not folder.is_dir():
        raise DataNotFoundError(
            f"ImageNet folder {folder} not found: expected the class-folder layout "
            f"imagenet/train/<class>/*.JPEG and imagenet/val/<class>/*.JPEG under data.root "
            f"(download ILSVRC-2012 from https://image-net.org and sort val/ into class folders)")
    try:
        return ImageFolder(str(folder), transform=transform, loader=load_rgb)
    except FileNotFoundError as e:
        raise DataNotFoundError(f"empty ImageNet split {folder}: expected class folders of "
                                f"image files ({e})") from e


def imagenet_datasets(cfg: DataConfig) -> tuple[ImageFolder, ImageFolder]:
    """(train, test=val) ImageFolders under cfg.root/imagenet; both must list the same classes."""
    base = Path(cfg.root) / "imagenet"
    train_tf, test_tf = imagenet_transforms(cfg.autoaugment, cfg.cutout)
    train = _image_folder(base / "train", train_tf)
    test = _image_folder(base / "val", test_tf)
    if train.classes != test.classes:
        only_train = sorted(set(train.classes) - set(test.classes))[:5]
        only_val = sorted(set(test.classes) - set(train.classes))[:5]
        raise DataError(f"{base}/train and {base}/val must hold the same class folders; "
                        f"only in train: {only_train}, only in val: {only_val}")
    return train, test


def _info(cfg, T: int, num_classes: int = 1000) -> DatasetInfo:
    return DatasetInfo("imagenet", num_classes, (3, 224, 224))


def _build(cfg, T: int):
    train, test = imagenet_datasets(cfg)
    return train, test, _info(cfg, T, len(train.classes))  # the class folders define the count


register_dataset(DatasetEntry("imagenet", _info, _build,
                              description="ILSVRC-2012 class folders"))
