"""Image wire layout: encodings, row padding in step, byte order, malformed messages."""
import numpy as np
import pytest

from ldf_ros.data.image_encoding import ENCODINGS, ImageEncodingError, decode_image, encode_image, to_rgb

RNG = np.random.default_rng(0)


def sample(encoding, h=5, w=7):
    dtype, c = ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    if dtype.kind == "f":
        return RNG.normal(size=shape).astype(dtype)
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip(encoding):
    arr = sample(encoding)
    data, h, w, step = encode_image(arr, encoding)
    np.testing.assert_array_equal(decode_image(data, h, w, encoding, step, False), arr)


@pytest.mark.parametrize("encoding", ["mono16", "32FC1", "rgb8"])
def test_row_padding_and_big_endian(encoding):
    arr = sample(encoding)
    dtype, c = ENCODINGS[encoding]
    h, w = arr.shape[:2]
    row = w * c * dtype.itemsize
    step = row + 6
    big = arr.astype(dtype.newbyteorder(">")).reshape(h, row // dtype.itemsize).view(np.uint8).reshape(h, row)
    padded = np.zeros((h, step), np.uint8)
    padded[:, :row] = big
    out = decode_image(padded.tobytes(), h, w, encoding, step, True)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == dtype and out.dtype.isnative


@pytest.mark.parametrize("kwargs, reason", [
    (dict(encoding="yuv422"), "unsupported encoding"),
    (dict(step=6), "step 6 is smaller"),
    (dict(height=0), "empty image"),
    (dict(data=b"\x00" * 10), r"expected step\*height"),
])
def test_malformed(kwargs, reason):
    args = dict(data=b"\x00" * 5 * 7 * 3, height=5, width=7, encoding="rgb8", step=21, is_bigendian=False)
    args.update(kwargs)
    with pytest.raises(ImageEncodingError, match=reason):
        decode_image(**args)


def test_encode_rejects_mismatch_and_to_rgb():
    with pytest.raises(ImageEncodingError, match="does not fit"):
        encode_image(np.zeros((4, 4), np.float32), "mono16")
    bgr = sample("bgr8")
    np.testing.assert_array_equal(to_rgb(bgr, "bgr8")[..., 0], bgr[..., 2])
    assert to_rgb(sample("mono8"), "mono8").shape == (5, 7, 3)
    with pytest.raises(ImageEncodingError, match="not a color image"):
        to_rgb(sample("mono16"), "mono16")
