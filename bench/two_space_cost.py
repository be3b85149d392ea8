"""Query cost of the second (general) vector space: crops/s of identify's and embed's encoder work, before and after.

    /work/shared/tools/cpujob -- .venv/bin/python -m bench.two_space_cost [--crops 384] [--repeat 3] [--no-embed]

identify (what ``app.workspace.identify.identify`` runs per batch of ``identify.BATCH`` images on the CPU):
- before: decode each crop (``identify.decode``), then the tuned model's query encoder
  (``app.workspace.encoders.query_encoder``: the model folder's ONNX export on onnxruntime), on the batch;
- after: the same decode, then both query encoders one after the other on the same decoded images
  (``TwoSpaces.embed``: ``tuned.embed(images)``, then ``general.embed(images)``), for the general encoder at
  each ``--general-size``.
The tuned model is the shipped default's shape (EfficientNet-Lite0, 128 px, pooled; ImageNet weights stand in
for trained ones: same graph, same cost), the general one ``embedder.general.GeneralConfig`` at each size; both
exported with ``embedder.export.export_model`` into a temporary folder. Not timed: scoring (prototype
similarities, the knn scorers: identical for both spaces' figures but the second space's prototype and few-shot
scorer, both small), and identify's prefetch thread (it overlaps the next batch's decode with this one's forward:
the figures here are decode + forward in sequence).

embed (``pipeline.embed_crops``: torch ``encode_paths`` over the crop files, once per space) with ``--embed``:
the tuned space alone, and the tuned plus the general space (two passes, two decodes).

Real fish4knowledge crops, CPU; the best of ``--repeat`` runs. Results: bench/results/two_space_cost.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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
    p.add_argument("--general-size", type=int, nargs="+", default=[96, 160], help="general encoder input sides")
    p.add_argument("--embed", action="store_true", help="also time embed (torch encode_paths, one pass per space)")
    args = p.parse_args()
    measure(args.crops, args.repeat, args.general_size, args.embed)


def exported(folder: Path, model) -> Path:
    """``model`` saved and exported (ONNX) into ``folder``; the folder."""
    from embedder.export import export_model
    from embedder.model import save_model

    save_model(model, folder)
    export_model(folder, model=model)
    return folder


def identify_pass(paths, encoders, batch: int) -> None:
    """identify's per-batch work: decode the batch once, then each encoder on the same decoded images."""
    from app.workspace.identify import decode

    for start in range(0, len(paths), batch):
        images = [decode(p, p.name) for p in paths[start : start + batch]]
        for encoder in encoders:
            encoder.embed(images)


def measure(crops: int = 384, repeat: int = 3, sizes=(96, 160), embed: bool = False) -> dict:
    """Every figure of the module docstring; printed and written to bench/results/two_space_cost.json."""
    import onnxruntime as ort

    from app.workspace.encoders import query_encoder
    from app.workspace.identify import BATCH
    from embedder.general import GeneralConfig, general_encoder
    from embedder.model import build_model

    every = sorted(FISH4K.glob("*/*.png"))
    paths = every[:: max(1, len(every) // crops)][:crops]
    n = len(paths)
    work = Path(tempfile.mkdtemp(prefix="two-space-cost-"))
    tuned_model = build_model("efficientnet_lite0", weights="imagenet", image_size=128, output="pooled").eval()
    tuned = query_encoder(exported(work / "tuned", tuned_model), "cpu")
    generals = {
        size: query_encoder(exported(work / f"general-{size}", general_encoder(GeneralConfig(image_size=size))), "cpu")
        for size in sizes
    }
    assert tuned.runtime == "onnxruntime" and all(g.runtime == "onnxruntime" for g in generals.values())
    identify_pass(paths[:BATCH], [tuned, *generals.values()], BATCH)  # warm up every session
    seconds = {"identify_tuned": best(lambda: identify_pass(paths, [tuned], BATCH), repeat)}
    rows = {"identify, tuned space only (decode + 1 ONNX forward)": n / seconds["identify_tuned"]}
    ratios = {}
    for size, general in generals.items():
        t = best(lambda g=general: identify_pass(paths, [tuned, g], BATCH), repeat)
        seconds[f"identify_both_{size}"] = t
        rows[f"identify, two spaces, general {size} px (decode once + 2 ONNX forwards)"] = n / t
        ratios[size] = {"identify": seconds["identify_tuned"] / t}
    if embed:
        from embedder.encoding import encode_paths

        t_tuned = best(lambda: encode_paths(tuned_model, paths, device="cpu", workers=0, progress=False), repeat)
        seconds["embed_tuned"] = t_tuned
        rows["embed, tuned space only (encode_paths)"] = n / t_tuned
        for size in sizes:
            model = general_encoder(GeneralConfig(image_size=size))
            t_general = best(lambda m=model: encode_paths(m, paths, device="cpu", workers=0, progress=False), repeat)
            seconds[f"embed_general_{size}"] = t_general
            rows[f"embed, two spaces, general {size} px (encode_paths x 2)"] = n / (t_tuned + t_general)
            ratios[size]["embed"] = t_tuned / (t_tuned + t_general)
    for name, value in rows.items():
        print(f"{name}: {value:.1f} crops/s")
    for size, r in ratios.items():
        print(f"general {size} px: " + ", ".join(f"{k} {v:.2f}x" for k, v in r.items()) + " of the tuned space alone")
    threads = ort.SessionOptions().intra_op_num_threads
    print(f"({n} crops, batch {BATCH}, onnxruntime {ort.__version__}, intra-op threads {threads or 'default'})")
    result = {
        "crops": n,
        "batch": BATCH,
        "runtime": f"onnxruntime {ort.__version__}",
        "crops_per_s": rows,
        "ratios": {str(k): v for k, v in ratios.items()},
        "seconds": seconds,
        "repeat": repeat,
    }
    write_result("two_space_cost", result)
    return result


if __name__ == "__main__":
    main()
