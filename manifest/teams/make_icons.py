"""Draws the Teams app icons with the standard library only: `python manifest/teams/make_icons.py`.

color.png is 192×192 (full colour); outline.png is 32×32, white on a transparent background, as Teams
requires. The drawing is a page with text lines: a wiki page.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

Pixel = tuple[int, int, int, int]
HERE = Path(__file__).resolve().parent
BLUE: Pixel = (31, 94, 186, 255)
WHITE: Pixel = (255, 255, 255, 255)
CLEAR: Pixel = (0, 0, 0, 0)


def png(size: int, paint: Callable[[int, int], Pixel]) -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(struct.pack("4B", *paint(x, y)) for x in range(size)) for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _page(x: int, y: int, size: int, *, border: int) -> bool | None:
    """True on the page outline and text lines, False inside the page, None outside it."""
    left, right, top, bottom = size * 0.25, size * 0.75, size * 0.16, size * 0.84
    if not (left <= x < right and top <= y < bottom):
        return None
    if x < left + border or x >= right - border or y < top + border or y >= bottom - border:
        return True
    line_gap = size * 0.13
    half_thickness = max(0.5, size * 0.018)
    in_line = any(abs(y + 0.5 - (top + line_gap * (i + 1.3))) <= half_thickness for i in range(4))
    return in_line and left + size * 0.1 <= x < right - size * 0.1 - 1


def color_pixel(x: int, y: int) -> Pixel:
    part = _page(x, y, 192, border=0)
    if part is None:
        return BLUE
    return BLUE if part else WHITE


def outline_pixel(x: int, y: int) -> Pixel:
    return WHITE if _page(x, y, 32, border=2) else CLEAR


def main() -> None:
    (HERE / "color.png").write_bytes(png(192, color_pixel))
    (HERE / "outline.png").write_bytes(png(32, outline_pixel))


if __name__ == "__main__":
    main()
