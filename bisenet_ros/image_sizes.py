# Copyright 2026 The bisenet_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
The size an encoded image claims, read from its header before anything is decoded.

A few hundred bytes can claim 30000x30000 pixels; a decoder takes gigabytes
before it finds out the data is missing. Reading the header first lets the
node and the tools refuse such a claim at once. JPEG and PNG (what
image_transport sends) and the other formats the offline tools read: BMP,
PNM (PPM/PGM/PBM), WebP and TIFF.
"""

import re

from bisenet_ros.runtime.options import DEFAULT_MAX_PIXELS, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (they carry the size): C0-CF but DHT, JPG and DAC.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNM_HEADER = re.compile(rb'^P[1-6](?:\s+|#[^\n]*\n)*(\d+)(?:\s+|#[^\n]*\n)+(\d+)')
# Magic numbers of formats no reader here sizes, only to name them.
_UNSIZED = ((b'GIF8', 'gif'), (b'\x00\x00\x00\x0cjP', 'jpeg2000'),
            (b'\xff\x4f\xff\x51', 'jpeg2000'), (b'#?RADIANCE', 'hdr'),
            (b'\x76\x2f\x31\x01', 'exr'))


class EncodedImageError(ValueError):
    """An encoded image whose header cannot be read; ``kind`` is 'unsupported' or 'corrupt'."""

    def __init__(self, message, kind):
        """Keep the message and the kind."""
        super().__init__(message)
        self.kind = kind


def size_refusal(width, height, max_pixels=DEFAULT_MAX_PIXELS):
    """Return (kind, why) when an image of ``width`` x ``height`` is refused, else None."""
    if width <= 0 or height <= 0:
        return 'zero_size', f'zero-sized image: width={width} height={height}'
    max_pixels = min(int(max_pixels), MAX_IMAGE_PIXELS)
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > max_pixels:
        return 'absurd_size', (f'absurd size: width={width} height={height} (limits: '
                               f'{MAX_IMAGE_SIDE} per side, {max_pixels} pixels: '
                               'max_image_pixels)')
    return None


def codec_of(data):
    """Return the format name of an encoded image ('jpeg', 'png', 'bmp', ...), or None."""
    head = bytes(memoryview(data).cast('B')[:16])
    for magic, name in ((_PNG_SIGNATURE, 'png'), (b'\xff\xd8', 'jpeg'), (b'BM', 'bmp'),
                        (b'II*\x00', 'tiff'), (b'MM\x00*', 'tiff'), *_UNSIZED):
        if head.startswith(magic):
            return name
    if head[:4] == b'RIFF' and head[8:12] == b'WEBP':
        return 'webp'
    if _PNM_HEADER.match(head) or re.match(rb'^P[1-6]\s', head):
        return 'pnm'
    return None


def claimed_size(data):
    """
    Return (codec, width, height) from an encoded image's own header.

    ``data`` is the encoded bytes (bytes, memoryview or a uint8 array). Raises
    EncodedImageError for an unknown format or a damaged header.
    """
    data = memoryview(data).cast('B')  # zero copy; indexing gives Python ints
    codec = codec_of(data)
    reader = _READERS.get(codec)
    if reader is None:
        raise EncodedImageError(
            f'{codec} images cannot be sized before decoding' if codec else
            f'neither a JPEG, PNG, BMP, PNM, WebP nor TIFF image (starts '
            f'{bytes(data[:8])!r})', 'unsupported' if codec else 'corrupt')
    size = reader(data)
    if size is None:
        raise EncodedImageError(f'damaged {codec} header: no image size in it', 'corrupt')
    return (codec, *size)


def _png(data):
    if len(data) < 24 or bytes(data[12:16]) != b'IHDR':
        return None
    return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')


def _jpeg(data):
    pos, end = 2, len(data)
    while pos + 4 <= end and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
        elif marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        elif marker in _JPEG_SOF:
            if pos + 9 > end:
                return None
            return ((data[pos + 7] << 8) | data[pos + 8], (data[pos + 5] << 8) | data[pos + 6])
        else:
            pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return None


def _bmp(data):
    if len(data) < 26:
        return None
    width = int.from_bytes(data[18:22], 'little', signed=True)
    height = int.from_bytes(data[22:26], 'little', signed=True)
    return abs(width), abs(height)  # a negative height stores rows top-down


def _pnm(data):
    match = _PNM_HEADER.match(bytes(data[:1024]))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _webp(data):
    chunk = bytes(data[12:16])
    if chunk == b'VP8X' and len(data) >= 30:
        return (int.from_bytes(data[24:27], 'little') + 1,
                int.from_bytes(data[27:30], 'little') + 1)
    if chunk == b'VP8L' and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], 'little')
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b'VP8 ' and len(data) >= 30:
        return (int.from_bytes(data[26:28], 'little') & 0x3FFF,
                int.from_bytes(data[28:30], 'little') & 0x3FFF)
    return None


def _tiff(data):
    order = 'little' if bytes(data[:2]) == b'II' else 'big'

    def number(at, size):
        return int.from_bytes(data[at:at + size], order) if at + size <= len(data) else None

    ifd = number(4, 4)
    count = number(ifd, 2) if ifd is not None else None
    if count is None:
        return None
    size = {}
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag, kind = number(entry, 2), number(entry + 2, 2)
        if tag in (256, 257) and kind in (3, 4):  # ImageWidth, ImageLength: SHORT or LONG
            size[tag] = number(entry + 8, 2 if kind == 3 else 4)
    return (size[256], size[257]) if {256, 257} <= set(size) else None


_READERS = {'png': _png, 'jpeg': _jpeg, 'bmp': _bmp, 'pnm': _pnm, 'webp': _webp,
            'tiff': _tiff}
