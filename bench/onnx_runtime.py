"""ONNX Runtime against torch for the query path's encoder: crops/s, cosine, and what pays off.

    python -m bench.onnx_runtime --model DIR --crops DIR [--batch 64] [--seconds 10] [--threads 2]

``--model``: a trained model folder (exported beside it first if it has no ``encoder.onnx``);
``--crops``: a folder of crop files (the first ``--batch`` PNG/JPEGs, sorted, are the batch).
On one fixed batch, decoded once, for about ``--seconds`` each:

- torch: ``embedder.encoding.encode_images`` (training's eval transform, what the query path
  ran before), torch threads = ``--threads``;
- onnxruntime: ``embedder.runtime.OnnxEncoder.embed`` (Pillow/numpy preprocessing), at each
  graph optimisation level and 1 .. ``--threads`` intra-op threads;
- INT8: onnxruntime's dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``) of
  the export: all ops, per-channel weights, and MatMul/Gemm only.

Each row: crops/s (preprocessing included), the min cosine to torch's vectors over the batch.
Writes bench/results/onnx_runtime.json; figures go into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import table, write_result


def timed(fn, seconds: float) -> tuple[float, object]:
    """Median seconds of one call of ``fn`` over repeated calls for about ``seconds`` (one warm-up)."""
    out = fn()
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--crops", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from embedder.encoding import encode_images
    from embedder.export import export_model
    from embedder.model import load_model
    from embedder.runtime import EXPORT_FILE, ONNX_FILE, OPT_LEVELS, OnnxEncoder, preprocess
    from index.imaging import open_image

    crops = sorted(p for p in args.crops.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[: args.batch]
    if not (args.model / EXPORT_FILE).is_file():
        print(export_model(args.model, crops).to_dict())
    images = [open_image(p) for p in crops]
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    size = model.config.image_size
    t_torch, ref = timed(lambda: encode_images(model, images, batch_size=args.batch, device="cpu"), args.seconds)
    rows = [
        {
            "runtime": "torch",
            "variant": "eval transform",
            "threads": args.threads,
            "crops_s": round(len(images) / t_torch, 1),
            "min_cos": 1.0,
            "x_torch": 1.0,
        }
    ]

    def row(name: str, variant: str, threads: int, encoder: OnnxEncoder) -> None:
        t, vecs = timed(lambda: encoder.embed(images, batch_size=args.batch), args.seconds)
        cos = float(np.min(np.sum(vecs.astype(np.float64) * ref, axis=1)))
        rows.append(
            {
                "runtime": name,
                "variant": variant,
                "threads": threads,
                "crops_s": round(len(images) / t, 1),
                "min_cos": round(cos, 6),
                "x_torch": round(t_torch / t, 2),
            }
        )
        print(rows[-1], flush=True)

    for level in OPT_LEVELS:
        row(
            "onnxruntime",
            f"opt {level}",
            args.threads,
            OnnxEncoder(args.model, threads=args.threads, optimization=level),
        )
    for threads in range(1, args.threads):
        row("onnxruntime", "opt all", threads, OnnxEncoder(args.model, threads=threads))
    t_pre, _ = timed(lambda: preprocess(images, OnnxEncoder(args.model).prep), min(args.seconds, 3))
    with tempfile.TemporaryDirectory() as tmp:  # INT8 variants: the runner's own session on each file
        import onnxruntime as ort

        for variant, kwargs in (
            ("int8 dynamic", {}),
            ("int8 dynamic per-channel", {"per_channel": True}),
            ("int8 dynamic MatMul/Gemm", {"op_types_to_quantize": ["MatMul", "Gemm"]}),
        ):
            out = Path(tmp) / "q.onnx"
            quantize_dynamic(str(args.model / ONNX_FILE), str(out), weight_type=QuantType.QInt8, **kwargs)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
            encoder = OnnxEncoder(args.model, threads=args.threads)
            encoder.session = session
            row("onnxruntime", variant, args.threads, encoder)
    print(table(rows))
    print(f"Pillow/numpy preprocessing alone: {len(images) / t_pre:.0f} crops/s ({size} px)")
    write_result(
        "onnx_runtime",
        {
            "model": str(args.model),
            "batch": len(images),
            "image_size": size,
            "threads": args.threads,
            "preprocess_crops_s": round(len(images) / t_pre, 1),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
