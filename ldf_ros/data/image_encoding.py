"""sensor_msgs/Image wire layout <-> numpy, without ROS imports.

Kept apart from the message classes so the rules (encodings, row padding in `step`,
byte order) are tested without a middleware, and shared by the node and the bag tools.
"""
from __future__ import annotations

import numpy as np

# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


class ImageEncodingError(ValueError):
    """An image message cannot be decoded; the message says why."""


def decode_image(data: bytes | bytearray | memoryview | np.ndarray, height: int, width: int,
                 encoding: str, step: int, is_bigendian: bool) -> np.ndarray:
    """Decode an Image's fields into an (H, W) or (H, W, C) array in native byte order.

    Color stays in the message's channel order; use :func:`to_rgb` for RGB.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).ravel()
    dtype, channels, row_bytes = check_image_fields(buf.size, height, width, encoding, step)
    rows = buf[: step * height].reshape(height, step)[:, :row_bytes]
    wire = dtype.newbyteorder(">" if is_bigendian else "<") if dtype.itemsize > 1 else dtype
    arr = np.ascontiguousarray(rows).view(wire).reshape(height, width, channels)
    arr = arr.astype(dtype, copy=False)
    return arr[:, :, 0] if channels == 1 else arr


def check_image_fields(nbytes: int, height: int, width: int, encoding: str, step: int) -> tuple[np.dtype, int, int]:
    """Reject malformed Image fields with the reason; returns (dtype, channels, bytes per row)."""
    if encoding not in ENCODINGS:
        raise ImageEncodingError(f"unsupported encoding '{encoding}' (supported: {', '.join(ENCODINGS)})")
    dtype, channels = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageEncodingError(f"empty image ({width}x{height})")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageEncodingError(f"step {step} is smaller than one row of {width} {encoding} pixels ({row_bytes} bytes)")
    if nbytes < step * height:
        raise ImageEncodingError(f"data has {nbytes} bytes, expected step*height = {step}*{height} = {step * height}")
    return dtype, channels, row_bytes


def check_image_limits(nbytes: int, height: int, width: int, max_width: int, max_height: int,
                       max_aspect: float, max_bytes: int) -> None:
    """Reject images beyond the configured limits before anything is allocated for them
    (a 20000x20000 claim, a 1x100000 strip), with the limit named."""
    if width > max_width or height > max_height:
        raise ImageEncodingError(f"image {width}x{height} exceeds limits.max_width x limits.max_height "
                                 f"({max_width}x{max_height})")
    if width > 0 and height > 0 and max(width / height, height / width) > max_aspect:
        raise ImageEncodingError(f"image {width}x{height} has aspect ratio {max(width / height, height / width):.1f}, "
                                 f"above limits.max_aspect ({max_aspect:g})")
    if nbytes > max_bytes:
        raise ImageEncodingError(f"image data of {nbytes} bytes exceeds limits.max_bytes ({max_bytes})")


def encode_image(arr: np.ndarray, encoding: str) -> tuple[bytes, int, int, int]:
    """Encode an array for an Image message: returns (data, height, width, step), little endian."""
    if encoding not in ENCODINGS:
        raise ImageEncodingError(f"unsupported encoding '{encoding}' (supported: {', '.join(ENCODINGS)})")
    dtype, channels = ENCODINGS[encoding]
    shape_ok = arr.ndim == 2 if channels == 1 else (arr.ndim == 3 and arr.shape[2] == channels)
    if not shape_ok:
        raise ImageEncodingError(f"array of shape {arr.shape} does not fit encoding '{encoding}' ({channels} channel(s))")
    if arr.dtype != dtype:
        raise ImageEncodingError(f"array dtype {arr.dtype} does not fit encoding '{encoding}' ({dtype})")
    h, w = arr.shape[:2]
    data = np.ascontiguousarray(arr, dtype=dtype.newbyteorder("<")).tobytes()
    return data, h, w, w * channels * dtype.itemsize


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """Any decoded color or mono8 image as (H, W, 3) uint8 RGB."""
    if encoding == "rgb8":
        return arr
    if encoding == "bgr8":
        return arr[:, :, ::-1]
    if encoding in ("rgba8", "bgra8"):
        rgb = arr[:, :, :3]
        return rgb if encoding == "rgba8" else rgb[:, :, ::-1]
    if encoding in ("mono8", "8UC1"):
        return np.repeat(arr[:, :, None], 3, axis=2)
    raise ImageEncodingError(f"encoding '{encoding}' is not a color image (expected rgb8, bgr8, rgba8, bgra8 or mono8)")
