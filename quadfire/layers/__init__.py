"""Stateless layers on time-major ``[T, N, ...]`` tensors: the time-folding wrapper, tdBN
(and its folding into convs for inference), and input encoders."""
from .encoding import Encoder, StemOnceEncoder
from .tdbn import ConvBN, TdBN, conv_bn, fold_tdbn, fuse_conv_bn
from .time import TimeFold, fold_time, unfold_time

__all__ = ["TimeFold", "fold_time", "unfold_time", "TdBN", "ConvBN",
           "conv_bn", "fold_tdbn", "fuse_conv_bn", "Encoder", "StemOnceEncoder"]
