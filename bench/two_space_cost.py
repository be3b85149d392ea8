"""Query cost of the second (general) vector space: crops/s of identify's and embed's encoder work, before and after.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.two_space_cost [--crops 384] [--repeat 3]

Before: decode + the tuned encoder (EfficientNet-Lite0, 128 px, pooled: the shipped default).
After: decode once + both encoders (the tuned one and the general one, frozen Lite0 at 96 / 128 / 160 px), batched
(``embedder.general.encode_images_both``: what identify does with two spaces). ``embed`` embeds each space
from the crop files (two decodes), so its cost is the sum of the two ``encode_paths`` runs. Real fish4knowledge
crops, CPU, batch 64; the best of ``--repeat`` runs. Results: bench/results/two_space_cost.json.
"""

from __future__ import annotations

import argparse
import time

from bench.common import FISH4K, write_result


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--crops", type=int, default=384)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--general-size", type=int, nargs="+", default=[96, 128, 160], help="general encoder input sides")
    args = p.parse_args()
    measure(args.crops, args.repeat, args.general_size)


def measure(crops: int = 384, repeat: int = 3, sizes=(96, 128, 160)) -> dict:
    """Every figure of the module docstring; printed and written to bench/results/two_space_cost.json."""
    import torch

    from embedder.encoding import encode_images, encode_paths
    from embedder.general import GeneralConfig, encode_images_both, general_encoder
    from embedder.model import build_model
    from index.imaging import open_image

    every = sorted(FISH4K.glob("*/*.png"))
    paths = every[:: max(1, len(every) // crops)][:crops]
    tuned = build_model("efficientnet_lite0", weights="imagenet", image_size=128, output="pooled").eval()
    n = len(paths)
    decode = lambda: [open_image(p) for p in paths]  # noqa: E731
    images = decode()
    encode_images(tuned, images[:8], device="cpu")  # warm up
    t_decode = best(decode, repeat)
    t_tuned = best(lambda: encode_images(tuned, images, device="cpu"), repeat)
    t_embed_tuned = best(lambda: encode_paths(tuned, paths, device="cpu", workers=0, progress=False), repeat)
    rows = {
        "identify, tuned only (decode + 1 forward)": n / (t_decode + t_tuned),
        "embed, tuned only (encode_paths)": n / t_embed_tuned,
    }
    seconds = {"decode": t_decode, "tuned": t_tuned, "embed_tuned": t_embed_tuned}
    ratios = {}
    for size in sizes:
        general = general_encoder(GeneralConfig(image_size=size))
        encode_images(general, images[:8], device="cpu")  # warm up
        t_both = best(lambda g=general: encode_images_both([tuned, g], images, device="cpu"), repeat)
        t_general = best(lambda g=general: encode_paths(g, paths, device="cpu", workers=0, progress=False), repeat)
        rows[f"identify, two spaces, general {size} px (decode once + 2 forwards)"] = n / (t_decode + t_both)
        rows[f"embed, two spaces, general {size} px (encode_paths x 2)"] = n / (t_embed_tuned + t_general)
        seconds.update({f"both_{size}": t_both, f"embed_general_{size}": t_general})
        ratios[size] = {
            "identify": (t_decode + t_tuned) / (t_decode + t_both),
            "embed": t_embed_tuned / (t_embed_tuned + t_general),
        }
    for name, value in rows.items():
        print(f"{name}: {value:.1f} crops/s")
    for size, r in ratios.items():
        print(f"general {size} px: identify {r['identify']:.2f}x, embed {r['embed']:.2f}x of the tuned space alone")
    print(f"({n} crops, torch threads {torch.get_num_threads()})")
    result = {"crops": n, "crops_per_s": rows, "ratios": ratios, "seconds": seconds}
    write_result("two_space_cost", result)
    return result


if __name__ == "__main__":
    main()
