"""``kiosk scan IMAGE...``: decode image files through the camera's own pipeline.

One JSON line per readable file on stdout, ``{"file", "codes": [...], "ms"}`` (plus
``"rejected": [reasons]`` when a code was found but failed payload hygiene). An unreadable
file is one line on stderr; the others are still scanned, and the exit code is 2.

An image over ``MAX_PIXELS`` (``--max-pixels``) is refused from its header, before it is
decoded: a 76 KB PNG can declare 20000 x 20000 pixels and take gigabytes to decode.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import CliError, UsageError
from .parsers import Verbs, add_verb, path_arg
from .store_args import load_verb_config

#: Largest image decoded: 40 megapixels (a phone photo is 12-50); a camera frame is 0.3.
MAX_PIXELS = 40_000_000


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header without decoding it; None when PIL cannot
    tell (not an image format it knows)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # PIL's own bomb check raises past 2x its limit; here the budget decides, so read
        # the size of any header (nothing is decoded).
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(path) as image:  # reads the header only
                return int(image.size[0]), int(image.size[1])
        except (UnidentifiedImageError, OSError, ValueError):
            return None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def register(sub: Verbs) -> None:
    p = add_verb(sub, "scan", run)
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", type=path_arg, help="image files (PNG, JPEG, ...)"
    )
    p.add_argument(
        "--backend",
        choices=("zxing", "pyzbar"),
        help="decoder library (default: the config's, zxing)",
    )
    p.add_argument(
        "--config", metavar="FILE", type=path_arg, help="take the decoder settings from this config"
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        metavar="N",
        default=MAX_PIXELS,
        help=f"refuse images larger than this many pixels, before decoding (default {MAX_PIXELS})",
    )


def run(args: argparse.Namespace) -> int:
    """decode QR codes in image files through the reader pipeline

    Decode image files through the same pipeline the camera uses (grayscale, decode,
    second pass where a code is likely, payload hygiene). Prints one JSON line per file:
    {"file", "codes": [...], "ms"}. Exit 2 if any file is unusable.

    Examples:
      kiosk scan pass-photo.jpg
      sudo kiosk-admin scan --config /etc/kiosk/kiosk.toml /tmp/card.png   # its decoder"""
    from drivers.clocksync import system_clock
    from drivers.decoders import DecoderUnavailable, build_decoder
    from drivers.file_source import read_image
    from drivers.pipeline import FramePipeline

    if args.max_pixels < 1:
        raise UsageError(f"--max-pixels {args.max_pixels}: expected a positive number")
    cfg = load_verb_config(args.config).readers.decoder
    if args.backend:
        cfg = cfg.model_copy(update={"backend": args.backend})
    try:
        decoder = build_decoder(cfg.backend)
    except DecoderUnavailable as exc:
        raise CliError(str(exc)) from None
    clock = system_clock()
    pipeline = FramePipeline(decoder, cfg, clock, source="scan")
    unusable = 0
    for name in args.images:
        path = Path(name)
        if not path.is_file():
            why = (
                "a folder, not an image file"
                if path.is_dir()
                else "not a regular file (a device or a pipe), not an image file"
                if path.exists()
                else "no such file"
            )
            print(f"kiosk scan: {name}: {why}", file=sys.stderr)
            unusable += 1
            continue
        size = image_size(path)
        if size is not None and size[0] * size[1] > args.max_pixels:
            print(
                f"kiosk scan: {name}: {size[0]}x{size[1]} pixels is over the budget of"
                f" {args.max_pixels} (--max-pixels); not decoded",
                file=sys.stderr,
            )
            unusable += 1
            continue
        frame = read_image(path)
        if frame is None:
            print(f"kiosk scan: {name}: not a readable image", file=sys.stderr)
            unusable += 1
            continue
        pipeline.reset()  # every file is a new scene: no gate, no hold-off across files
        started = time.perf_counter()
        result = pipeline.process_detailed(frame, clock.monotonic_ns())
        ms = (time.perf_counter() - started) * 1000.0
        line: dict[str, object] = {
            "file": name,
            "codes": [c.text for c in result.codes],
            "ms": round(ms, 2),
        }
        if result.rejected:
            line["rejected"] = [r.reason for r in result.rejected]
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 2 if unusable else 0
