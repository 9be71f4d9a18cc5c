"""Image and event-frame augmentations, and the per-dataset normalisation constants."""
from __future__ import annotations

import torch
from torchvision.transforms import v2
from ..errors import ParameterError

# Per-channel pixel mean and standard deviation of each training set, on the [0, 1] scale.
# CIFAR values are the exact statistics of the 50k training images (some SNN code bases use
# (0.2023, 0.1994, 0.2010) for CIFAR-10, a widely copied miscomputation of the std).
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Fashion-MNIST: computed from the 60k training images of Debian's dataset-fashion-mnist
    # (mean 0.28604, std 0.35302 over all 47M pixels); the PLIF code uses the same (0.2860, 0.3530).
    "fashion-mnist": ((0.2860,), (0.3530,)),
    # MNIST: the standard values of the PyTorch MNIST example (mean 0.13066, std 0.30811 of the
    # 60k training images); not recomputed here, as MNIST is not installed on the test machine.
    "mnist": ((0.1307,), (0.3081,)),
}


class Cutout(torch.nn.Module):
    """Zero one `size` x `size` square of a ``[C, H, W]`` image (DeVries & Taylor, 2017).

    The centre is uniform over all pixels, so the square may hang over the border and cover
    less area, as in the original. Applied after normalisation, so zero is the dataset mean.
    """

    def __init__(self, size: int):
        super().__init__()
        if size < 1:
            raise ParameterError(f"Cutout size must be >= 1 pixel, got {size}")
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy = int(torch.randint(0, h, ()))
        cx = int(torch.randint(0, w, ()))
        half = self.size // 2
        y0, y1 = max(cy - half, 0), min(cy - half + self.size, h)
        x0, x1 = max(cx - half, 0), min(cx - half + self.size, w)
        out = img.clone()
        out[..., y0:y1, x0:x1] = 0
        return out


def to_normalized(dataset: str) -> list:
    """uint8 image -> float32 in [0, 1] -> standardised with the dataset's constants."""
    mean, std = NORMALIZATION[dataset]
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std),
            v2.ToPureTensor()]


def cifar_transforms(dataset: str, autoaugment: bool, cutout: int
                     ) -> tuple[v2.Compose, v2.Compose]:
    """(train, test) transforms for CIFAR uint8 images ``[3, 32, 32]``.

    Train: random crop 32 with 4 zero-padded pixels, horizontal flip, optional AutoAugment
    (CIFAR-10 policy, also used for CIFAR-100 as in the literature), normalisation, optional
    Cutout. Test: normalisation only.
    """
    train = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    if autoaugment:
        train.append(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    train += to_normalized(dataset)
    if cutout:
        train.append(Cutout(cutout))
    return v2.Compose(train), v2.Compose(to_normalized(dataset))


def imagenet_transforms(autoaugment: bool, cutout: int) -> tuple[v2.Compose, v2.Compose]:
    """(train, test) transforms for PIL images of any size -> ``[3, 224, 224]``.

    Train: RandomResizedCrop(224) + horizontal flip (+ AutoAugment ImageNet policy, Cutout).
    Test: Resize(256) on the short side + CenterCrop(224).
    """
    train = [v2.RandomResizedCrop(224), v2.RandomHorizontalFlip()]
    if autoaugment:
        train.append(v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET))
    train += to_normalized("imagenet")
    if cutout:
        train.append(Cutout(cutout))
    test = [v2.Resize(256), v2.CenterCrop(224)] + to_normalized("imagenet")
    return v2.Compose(train), v2.Compose(test)


class EventAugment(torch.nn.Module):
    """Training augmentation for event frames ``[T, C, H, W]`` (the TET CIFAR10-DVS recipe).

    With probability 1/2 flip horizontally, then roll by (dy, dx) drawn uniformly from
    ``[-max_shift, max_shift]``; the same flip and roll apply to every frame, since they
    model one moved camera, not motion within the recording. Rolling wraps pixels round.
    """

    def __init__(self, max_shift: int = 5):
        super().__init__()
        self.max_shift = max_shift

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if bool(torch.rand(()) < 0.5):
            frames = frames.flip(-1)
        dy, dx = torch.randint(-self.max_shift, self.max_shift + 1, (2,)).tolist()
        return frames.roll(shifts=(dy, dx), dims=(-2, -1))
