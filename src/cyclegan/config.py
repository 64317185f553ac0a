"""Explicit, typed configuration: dataclasses with the paper's defaults, presets, and overrides.

`Config` is written as JSON into every run directory (`config.json`) and into every checkpoint, so a
run can be rebuilt without the command line that started it. Override any field with "section.field=value"
(`--set model.ngf=32`) or a YAML/JSON file of the same shape.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError, parse_problem


@dataclass
class DataConfig:
    root: str = ""  # folder holding trainA/ and trainB/ (and testA/, testB/)
    dir_a: str = ""  # explicit domain-A training folder (overrides root/trainA)
    dir_b: str = ""  # explicit domain-B training folder (overrides root/trainB)
    channels_a: int = 3  # image channels of domain A (1 grey, 3 RGB, 4 RGBA, more from .npy)
    channels_b: int = 3  # image channels of domain B
    preprocess: str = "resize_and_crop"  # resize_and_crop | crop | scale_width | scale_width_and_crop | none
    load_size: int = 286  # resize target before cropping (paper: 286 -> random 256 crop)
    crop_size: int = 256  # training crop (the network's input size)
    flip: bool = True  # random horizontal flip
    serial: bool = False  # pair A[i] with B[i % |B|] instead of a random B
    max_images: int = 0  # use at most this many images per domain (0 = all)
    workers: int = -1  # data-loading processes (-1 = min(4, cores - 1))
    direction: str = "AtoB"  # for paired methods: which half/folder is the input


@dataclass
class ModelConfig:
    method: str = "cyclegan"  # training objective: cyclegan | pix2pix | ... (see `cyclegan.methods`)
    generator: str = "resnet_9blocks"  # resnet_9blocks | resnet_6blocks | unet_256 | unet_128
    discriminator: str = "basic"  # basic (70x70 PatchGAN) | n_layers | pixel
    n_layers_d: int = 3  # depth of the n_layers discriminator
    ngf: int = 64  # generator width (filters in the first conv)
    ndf: int = 64  # discriminator width
    norm: str = "instance"  # instance | batch | none
    dropout: bool = False  # dropout in the generator (ResNet blocks / U-Net inner levels)
    init: str = "normal"  # normal (the paper's N(0, 0.02)) | xavier | kaiming | orthogonal
    init_gain: float = 0.02  # std of `normal`, gain of xavier/orthogonal
    latent_dim: int = 100  # CoGAN / latent BiGAN: size of the noise / latent vector z
    latent_steps: int = 200  # CoGAN translation: Adam steps of the search for z with G_X(z) ~ x
    latent_lr: float = 0.05  # CoGAN translation: learning rate of that search
    nce_layers: str = "0,4,8,12,16"  # CUT/FastCUT: generator layers (indices into its model) PatchNCE compares
    nce_mlp_nc: int = 256  # CUT/FastCUT: units of each 2-layer projection head H_l


@dataclass
class LossConfig:
    gan_mode: str = "lsgan"  # lsgan (paper) | vanilla | wgangp
    lambda_a: float = 10.0  # weight of the forward cycle ||F(G(x)) - x|| (Eq. 2-3, lambda)
    lambda_b: float = 10.0  # weight of the backward cycle ||G(F(y)) - y||
    lambda_identity: float = 0.5  # identity weight relative to lambda_a/b (0 disables, skips 2 passes)
    lambda_gan_a: float = 1.0  # weight of L_GAN(G, D_Y) (ablations set it to 0)
    lambda_gan_b: float = 1.0  # weight of L_GAN(F, D_X)
    lambda_gp: float = 10.0  # gradient-penalty weight for wgangp
    lambda_l1: float = 100.0  # pix2pix: L1 weight
    pool_size: int = 50  # image history pool per direction (0 disables)
    lambda_self_reg: float = 10.0  # SimGAN / feature_gan: weight of ||G(x) - x||_1 (in pixels / in features)
    feature_net: str = "inception"  # feature_gan: inception (FID Inception, Mixed_5d) | vgg16 (relu4_2)
    feature_weights: str = ""  # feature_gan: weights file of feature_net (vgg16 needs one)
    lambda_semantic: float = 0.0  # cyclegan: weight of CyCADA's semantic consistency loss (0 = off, plain CycleGAN)
    semantic_classifier: str = (
        ""  # its fixed classifier file (cyclegan.content format; CyCADA uses one trained on domain A's labels)
    )
    cycle_noise: float = 0.0  # cyclegan: std of Gaussian noise added to G(x) and F(y) before the cycle back
    # (Bashkirova et al. 2019; images in [-1, 1]; 0 = off, the paper)
    cycle_palette_a: str = (
        ""  # cyclegan: snap F(y) to this palette's nearest colours before the cycle back ("facades"; "" = off)
    )
    cycle_palette_b: str = ""  # cyclegan: the same for G(x), when domain B is colour-coded label maps
    diffaugment: str = ""  # cyclegan: DiffAugment on the discriminators' inputs, real and fake (Zhao et al. 2020):
    # comma-separated from color, translation, cutout; "" = off, the paper
    lambda_nce: float = 1.0  # CUT/FastCUT: weight of PatchNCE (CUT Eq. 5, lambda_X; FastCUT's preset: 10)
    nce_idt: bool = True  # CUT: also PatchNCE between y and G(y) (lambda_Y = lambda_X); FastCUT: off
    nce_patches: int = 256  # CUT/FastCUT: patches sampled per layer and image
    nce_temperature: float = 0.07  # CUT/FastCUT: tau of PatchNCE (CUT Eq. 2)
    flip_equivariance: bool = False  # FastCUT: flip G's input at random and ask for flipped features (CUT Sec. 4)


@dataclass
class OptimConfig:
    lr: float = 2e-4  # Adam learning rate (paper)
    beta1: float = 0.5  # Adam beta1 (paper)
    beta2: float = 0.999  # Adam beta2
    lr_policy: str = "linear"  # linear | step | cosine | plateau
    n_epochs: int = 100  # epochs at the initial lr (linear policy)
    n_epochs_decay: int = 100  # epochs of linear decay to zero after that
    lr_decay_epochs: int = 50  # step policy: multiply by lr_gamma every this many epochs
    lr_gamma: float = 0.1  # step/plateau decay factor
    plateau_patience: int = 5  # plateau policy: epochs without improvement before decaying
    ema_decay: float = 0.0  # keep an exponential moving average of the generators' weights (e.g. 0.999;
    # 0 = off); snapshots and evaluation then use the average


@dataclass
class TrainConfig:
    batch_size: int = 1  # images per step per process (paper: 1)
    seed: int = 0  # seeds weights, data order, crops, pools
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # CPU threads of the process (torch.set_num_threads; 0 = torch's default, one per core); kept
    # on resume, since sums in another order change results
    max_steps: int = 0  # stop (with a checkpoint) after this many steps in total (0 = no limit)
    log_every: int = 50  # steps between loss read-backs (JSONL, TensorBoard, progress bar)
    sample_every: int = 500  # steps between sample grids (0 = only at epoch ends)
    save_every_epochs: int = 5  # keep a model snapshot every k epochs (latest is always kept)
    checkpoint_minutes: float = 10.0  # also save the resume state at least this often (crash costs <= this)
    precision: str = "auto"  # auto (bf16 where the hardware computes it natively and fast, else fp32; the choice is
    # recorded in config.json) | fp32 | bf16 | fp16 (autocast; fp16 with a grad scaler, CUDA)
    fuse_passes: bool = True  # one network call for passes whose samples do not interact (methods/fused.py)
    channels_last: str = "auto"  # NHWC memory format: auto (where it pays: bf16 on AMX CPUs, bf16/fp16 on CUDA,
    # the fp32 that precision=auto picks on AVX-512 CPUs; recorded in config.json as true/false) | true | false
    winograd: str = "auto"  # 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) (nets/winograd.py): auto (the float32
    # that precision=auto picks on a CPU: 4x fewer multiplications, float32 errors of the direct convolution's
    # order; never for an explicit precision=fp32; recorded in config.json as true/false) | true | false; calls too
    # small to pay (under winograd.MIN_TILES output tiles) run the direct convolution either way; with it, the
    # generator's strided convolutions take their weight gradients from one matrix product (nets/weight_grad.py)
    compile: str = "auto"  # torch.compile the networks: auto (on CUDA for runs long enough to win back the
    # compile time; off on CPUs, where compiled steps measured slower; compiling.compile_recommended;
    # recorded in config.json as true/false) | true | false
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    adam: str = "auto"  # Adam kernel: auto (fused on CUDA and in bf16/fp16, else foreach) | fused | foreach | forloop
    eval_every_epochs: int = 0  # evaluate during training every k epochs (0 = off)
    eval_metric: str = "fid"  # metric for in-training evaluation / best checkpoint
    eval_images: int = 100  # test images per direction for in-training evaluation
    eval_classifier: str = ""  # the judge: eval_metric=content: classifier of domain-B images (cyclegan.content);
    # fcn: segmenter of real photos (cyclegan.segmenter)
    eval_root: str = ""  # folder with testA/, testB/ to evaluate on (default data.root); a validation split keeps
    # the best snapshot free of test data
    progress: bool = True  # show a progress bar
    max_bad_steps: int = 3  # divergence guard: skipped non-finite steps in a row before a stop (0 = off)
    max_loss: float = 1e6  # divergence guard: a phase's loss above this stops the run (0 = no bound)
    init_from: str = ""  # new run from saved weights: PATH (run, checkpoint, folder of reference latest_net_*.pth)
    # or NET=PATH, comma-separated; the rest N(0, 0.02)


@dataclass
class LogConfig:
    wandb: bool = False  # also log scalars and sample grids to Weights & Biases (pip install wandb)
    wandb_project: str = "cyclegan"  # W&B project
    wandb_run: str = ""  # W&B run name (default: the run directory's name)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)  # where scalars go besides log.jsonl and TensorBoard

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        cfg = cls()
        apply_dict(cfg, d)
        return cfg

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


def _coerce(value, typ, where: str):
    """Convert a string or JSON value to the field's type, or fail naming the field."""
    typ = {"int": int, "float": float, "bool": bool, "str": str}.get(typ, typ) if isinstance(typ, str) else typ
    if isinstance(value, bool) and typ is str:  # a setting that became a choice (train.channels_last: false -> "false")
        return "true" if value else "false"
    if isinstance(value, str) and typ is not str:
        text = value.strip()
        if typ is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise UserError(f"{where}: expected true/false, got {value!r}")
        try:
            return typ(text)
        except ValueError:
            raise UserError(f"{where}: expected {typ.__name__}, got {value!r}") from None
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise UserError(f"{where}: expected {typ.__name__}, got {value!r}")
    return value


def set_field(cfg: Config, dotted: str, value) -> None:
    """Set "section.field" to value (string or typed), checking both names and the type."""
    parts = dotted.split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise UserError(f"unknown config key {dotted!r}: use section.field with section one of {', '.join(SECTIONS)}")
    section = getattr(cfg, parts[0])
    types = {f.name: f.type for f in dataclasses.fields(section)}
    if parts[1] not in types:
        raise UserError(f"unknown config key {dotted!r}; fields of {parts[0]}: {', '.join(types)}")
    setattr(section, parts[1], _coerce(value, types[parts[1]], dotted))


def apply_dict(cfg: Config, d: dict, where: str = "config") -> Config:
    """Apply a nested {"section": {"field": value}} dict (from JSON/YAML) onto cfg."""
    if not isinstance(d, dict):
        raise UserError(f"{where}: expected a mapping of sections ({', '.join(SECTIONS)})")
    for name, sub in d.items():
        if name not in SECTIONS:
            raise UserError(f"{where}: unknown section {name!r}; sections: {', '.join(SECTIONS)}")
        if not isinstance(sub, dict):
            raise UserError(f"{where}: section {name!r} must be a mapping")
        for key, value in sub.items():
            try:
                set_field(cfg, f"{name}.{key}", value)
            except UserError as e:
                raise UserError(f"{where}: {e}") if where != "config" else e from None
    return cfg


def apply_overrides(cfg: Config, overrides: typing.Iterable[str]) -> Config:
    """Apply "section.field=value" strings."""
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like section.field=value (e.g. model.ngf=32)")
        key, value = item.split("=", 1)
        set_field(cfg, key.strip(), value)
    return cfg


def load_file(cfg: Config, path: str | Path) -> Config:
    """Apply a YAML or JSON config file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} not found")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            d = yaml.safe_load(text) or {}
        else:
            d = json.loads(text)
    except Exception as e:  # noqa: BLE001 - parsers raise many types
        raise UserError(f"{path}: cannot parse ({parse_problem(e)})") from None
    return apply_dict(cfg, d, where=str(path))


# Presets: named override sets, applied in order (`--preset quick,cycle_only`).
PRESETS: dict[str, dict[str, object]] = {
    # The paper's setup for 256x256 images (Sec. 4 and Appendix 7): everything at its default.
    "paper": {},
    # The paper's 128x128 setup (Cityscapes, maps): 6 residual blocks.
    "paper128": {"model.generator": "resnet_6blocks", "data.load_size": 143, "data.crop_size": 128},
    # Small and fast on a CPU: for trying the tool, not for quality.
    "quick": {
        "model.generator": "resnet_6blocks",
        "model.ngf": 16,
        "model.ndf": 16,
        "data.load_size": 72,
        "data.crop_size": 64,
        "optim.n_epochs": 3,
        "optim.n_epochs_decay": 3,
        "loss.lambda_identity": 0.0,
        "train.sample_every": 200,
        "train.log_every": 20,
        "train.save_every_epochs": 0,
    },
    # The paper's ablations (Sec. 5.1.4, Table 4-5).
    "gan_only": {"loss.lambda_a": 0.0, "loss.lambda_b": 0.0, "loss.lambda_identity": 0.0},
    "cycle_only": {"loss.lambda_gan_a": 0.0, "loss.lambda_gan_b": 0.0, "loss.lambda_identity": 0.0},
    "gan_forward": {"loss.lambda_b": 0.0},
    "gan_backward": {"loss.lambda_a": 0.0},
    # pix2pix (Isola et al. 2017) with the reference's defaults; pick the input with data.direction.
    "pix2pix": {
        "model.method": "pix2pix",
        "model.generator": "unet_256",
        "model.norm": "batch",
        "model.dropout": True,
        "model.discriminator": "basic",
        "loss.gan_mode": "vanilla",
        "loss.lambda_l1": 100.0,
        "loss.pool_size": 0,
        "loss.lambda_identity": 0.0,
    },
    # The paper's baselines (Sec. 5.1.2, Tables 1-3; defaults and sources in docs/baselines.md).
    "simgan": {"model.method": "simgan", "loss.lambda_self_reg": 10.0, "loss.pool_size": 50},
    "feature_gan": {"model.method": "feature_gan", "loss.lambda_self_reg": 10.0, "loss.feature_net": "inception"},
    "cogan": {
        "model.method": "cogan",
        "model.norm": "batch",
        "model.latent_dim": 100,
        "loss.gan_mode": "vanilla",
        "loss.pool_size": 0,
        "train.batch_size": 64,
    },
    "bigan": {"model.method": "bigan"},
    "bigan_latent": {
        "model.method": "bigan_latent",
        "model.norm": "batch",
        "model.latent_dim": 100,
        "loss.gan_mode": "vanilla",
        "loss.pool_size": 0,
        "train.batch_size": 64,
    },
    # CUT and FastCUT (Park et al. 2020) with their reference's defaults: no pool, Xavier init (docs/cut.md).
    "cut": {
        "model.method": "cut",
        "loss.lambda_nce": 1.0,
        "loss.nce_idt": True,
        "loss.flip_equivariance": False,
        "loss.pool_size": 0,
        "model.init": "xavier",
        "optim.n_epochs": 200,
        "optim.n_epochs_decay": 200,
    },
    "fastcut": {
        "model.method": "fastcut",
        "loss.lambda_nce": 10.0,
        "loss.nce_idt": False,
        "loss.flip_equivariance": True,
        "loss.pool_size": 0,
        "model.init": "xavier",
        "optim.n_epochs": 150,
        "optim.n_epochs_decay": 50,
    },
}


def apply_presets(cfg: Config, names: typing.Iterable[str]) -> Config:
    for name in names:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}; choose from: {', '.join(PRESETS)}")
        for key, value in PRESETS[name].items():
            set_field(cfg, key, value)
    return cfg


def build_config(
    presets: typing.Iterable[str] = (),
    files: typing.Iterable[str] = (),
    overrides: typing.Iterable[str] = (),
    base: Config | None = None,
) -> Config:
    """Defaults (or `base`, e.g. a run's saved config), then presets, then config files, then "a.b=c"
    overrides: later wins."""
    cfg = Config.from_dict(base.to_dict()) if base is not None else Config()
    apply_presets(cfg, presets)
    for f in files:
        load_file(cfg, f)
    apply_overrides(cfg, overrides)
    return cfg
