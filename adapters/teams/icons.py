"""The Teams app icons, drawn by the project (no image library): `color.png` (192×192, the
accent colour with a white speech bubble) and `outline.png` (32×32, a white bubble outline on
a transparent background, as Teams requires). `python -m adapters.teams.icons` rewrites the
copies in `manifest/teams/`; a test checks the shipped files are these drawings."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "manifest" / "teams"
ACCENT = (0x1F, 0x6F, 0x8B)
WHITE = (0xFF, 0xFF, 0xFF)
SAMPLES = 4  # supersampling per axis: smooth edges

Shape = Callable[[float, float], bool]  # unit coordinates, (0, 0) top left


def _rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float) -> Shape:
    def inside(x: float, y: float) -> bool:
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            return False
        cx = min(max(x, x0 + r), x1 - r)
        cy = min(max(y, y0 + r), y1 - r)
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

    return inside


def _triangle(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> Shape:
    def side(p: tuple[float, float], q: tuple[float, float], x: float, y: float) -> float:
        return (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1])

    def inside(x: float, y: float) -> bool:
        d1, d2, d3 = side(a, b, x, y), side(b, c, x, y), side(c, a, x, y)
        return not ((d1 < 0 or d2 < 0 or d3 < 0) and (d1 > 0 or d2 > 0 or d3 > 0))

    return inside


def _circle(cx: float, cy: float, r: float) -> Shape:
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _bubble(inset: float = 0.0) -> Shape:
    body = _rounded_rect(0.2 + inset, 0.24 + inset, 0.8 - inset, 0.66 - inset, 0.1)
    tail = _triangle((0.3 + inset, 0.6), (0.28 + inset, 0.8 - inset), (0.46, 0.62 - inset))
    return lambda x, y: body(x, y) or tail(x, y)


_DOTS = [_circle(cx, 0.45, 0.045) for cx in (0.36, 0.5, 0.64)]


def _coverage(size: int, shape: Shape) -> list[list[float]]:
    rows = []
    step = 1.0 / (size * SAMPLES)
    for py in range(size):
        row = []
        for px in range(size):
            hits = sum(
                shape((px * SAMPLES + sx + 0.5) * step, (py * SAMPLES + sy + 0.5) * step)
                for sy in range(SAMPLES)
                for sx in range(SAMPLES)
            )
            row.append(hits / SAMPLES**2)
        rows.append(row)
    return rows


def draw_color(size: int = 192) -> bytes:
    background = _coverage(size, _rounded_rect(0.0, 0.0, 1.0, 1.0, 0.18))
    bubble = _coverage(size, _bubble())
    dots = _coverage(size, lambda x, y: any(d(x, y) for d in _DOTS))
    pixels = []
    for y in range(size):
        row = []
        for x in range(size):
            white = bubble[y][x] * (1 - dots[y][x])
            rgb = tuple(
                round(a * (1 - white) + w * white) for a, w in zip(ACCENT, WHITE, strict=True)
            )
            row.append((*rgb, round(255 * background[y][x])))
        pixels.append(row)
    return encode_png(pixels)


def draw_outline(size: int = 32) -> bytes:
    outer, inner = _bubble(), _bubble(inset=0.07)
    ring = _coverage(size, lambda x, y: outer(x, y) and not inner(x, y))
    dots = _coverage(size, lambda x, y: any(d(x, y) for d in _DOTS))
    pixels = [
        [(*WHITE, round(255 * min(1.0, ring[y][x] + dots[y][x]))) for x in range(size)]
        for y in range(size)
    ]
    return encode_png(pixels)


def encode_png(pixels: list[list[tuple[int, int, int, int]]]) -> bytes:
    """RGBA rows as a PNG file (8-bit, colour type 6, no filtering)."""
    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def png_info(data: bytes) -> tuple[int, int, int]:
    """(width, height, colour type) from a PNG's header; ValueError if it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height, _depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, colour


def main() -> None:
    (MANIFEST_DIR / "color.png").write_bytes(draw_color())
    (MANIFEST_DIR / "outline.png").write_bytes(draw_outline())


if __name__ == "__main__":
    main()
