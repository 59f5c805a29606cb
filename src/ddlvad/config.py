"""Configuration: one dataclass per stage, YAML presets, dotted CLI overrides.

A run's resolved config is dumped to ``config.yaml`` so every later verb
(``test``, ``predict``, ``report``) rebuilds exactly the same preprocessing and model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ddlvad.config_check import ConfigError, validate
from ddlvad.io import atomic_write_text, read_text


@dataclass
class DataConfig:
    """Where frames come from and how they are prepared."""

    root: str = ""
    layout: str = "auto"  # auto | frames | ucsd | avenue | shanghaitech | folder
    scene: str = ""  # ShanghaiTech scene id / camera group
    height: int = 128
    width: int = 128
    channels: int = 1  # 1 = gray, 3 = RGB
    T: int = 3  # clip length, odd
    cache_dir: str = ""  # default: <root>/.ddlvad_cache or ~/.cache/ddlvad
    max_videos: int = 0  # 0 = all; >0 keeps the first N videos of each split (smoke runs)


@dataclass
class ModelConfig:
    """Reconstruction network (see ``ddlvad.models``)."""

    name: str = "c3dsu"  # c3dsu | unet
    latent: int = 64  # widths are latent/8, /4, /2, latent
    kernels: tuple[int, ...] = (3, 5, 7)  # authors' code; paper text: (3, 3, 3, 3)
    final_kernel: int = 1


@dataclass
class ObjectsConfig:
    """Object proposals + tracking for pseudo-anomaly masks."""

    proposer: str = "bgsub"  # bgsub | mot | json (bring your own detections)
    detections: str = ""  # MOT folder/file or authors' JSON, for the mot/json proposers
    tracker: str = "ocsort"  # ocsort (trackers library) | iou (greedy) | given (ids from file)
    min_area: float = 0.0005  # fraction of the frame area
    max_area: float = 0.25
    diff_threshold: int = 25  # gray levels above the temporal-median background
    iou_threshold: float = 0.3
    scale: int = 1  # bgsub proposals + tracking on frames this many times the working size


@dataclass
class PseudoConfig:
    """Pseudo-anomaly creator, eqs (1)-(2)."""

    mode: str = "dynamic"  # none | static | dynamic
    sigma: float = 0.5  # fixed weight for static mode
    l_init: float = 0.0  # dynamic mode: s = sigmoid(l), l starts here
    l_lr_scale: float = 1.0  # dynamic mode: l's learning rate is train.lr times this
    no_track: str = "skip"  # skip | random: clips without a full-length track
    margin: float = 0.0  # each mask box grows by this fraction of its width/height per side


@dataclass
class LossConfig:
    """Reconstruction + distinction loss, eqs (3)-(7)."""

    lam: float = 1e-2
    eps: float = 1e-6
    norm: str = "region"  # region (paper) | pixel (authors' code; stalls at C = 1, see loss.py)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-2
    step_frac: float = 0.8  # StepLR step = step_frac * epochs
    gamma: float = 0.5
    seed: int = 0
    workers: int = 0
    threads: int = 0  # torch intra-op threads; 0 = the free cores, following the load
    max_steps: int = 0  # 0 = no cap (smoke runs use a cap)
    device: str = "auto"
    amp: bool = False  # bf16 autocast for the forward passes (GPU, or a CPU with bf16)
    channels_last: bool = False  # NHWC memory format for the 2D convolutions
    compile: bool = False  # torch.compile the network f (inductor; needs a C++ compiler on CPU)
    fast: bool = True  # fast kernels (same maths; see models/blocks.py); false = reference
    precise_bn: bool = True  # fast path: training BatchNorm on NCHW memory (precise, slower)
    ema: float = 0.0  # decay of a weight EMA kept for scoring (e.g. 0.999); 0 = off
    balance: bool = False  # every training video the same share of an epoch
    shift: int = 0  # each clip moved by up to this many pixels in x and y (augmentation)


@dataclass
class ScoreConfig:
    """Frame scoring: the protocol's fields (``ddlvad.scoring.protocol.ScoreProtocol``, which
    also says what each means), then how scoring runs (batch, weights, BN statistics)."""

    patch: int = 16
    shifted: bool = False  # add the 8-px-shifted grid (authors' code)
    median: int = 17  # median filter window, 0 = off
    normalize: bool = False  # per-video min-max before pooling videos
    batch_size: int = 16
    edge: str = "clamp"  # clamp: edge frames use replicated neighbours
    weights: str = "ema"  # ema: the run's weight EMA when it kept one (train.ema); last: last step
    # clean: BN statistics re-estimated on clean training clips at the end of training (when
    # the checkpoint has them); trained: the running statistics training left, which mix in
    # the pseudo-anomalous pass of every step
    bn: str = "clean"
    gain: int = 0  # N > 0: calibrate test brightness to training's over the last N frames
    stride: int = 1  # k > 1: the network scores every k-th frame; linear in between
    power: int = 1  # error map = Euclidean distance ** power (1: the paper; 2: squared)


# What ``train --resume`` may change in a run's config: where its data is found, how far
# training goes, and where and how fast it runs (anything else would make it another run).
RESUME_KEYS = (
    "name",
    "data.root",
    "data.layout",
    "data.cache_dir",
    "train.max_steps",
    "train.epochs",
    "train.threads",
    "train.workers",
    "train.device",
    "train.compile",
    "train.channels_last",
)


@dataclass
class CalibConfig:
    """Alert threshold calibrated at training time on held-out normal frames."""

    holdout: float = 0.0  # fraction at the end of each training video kept out of training
    quantile: float = 0.99  # threshold = this quantile of held-out smoothed scores


@dataclass
class Config:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objects: ObjectsConfig = field(default_factory=ObjectsConfig)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    calib: CalibConfig = field(default_factory=CalibConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"]["kernels"] = list(self.model.kernels)
        return d

    def dump(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    def model_key(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be loadable into this config."""
        d = self.to_dict()
        return {
            "model": d["model"],
            "T": self.data.T,
            "channels": self.data.channels,
            "size": [self.data.height, self.data.width],
            "pseudo_mode": self.pseudo.mode,
        }

    def validate(self, source: str = "config") -> Config:
        """ConfigError naming every out-of-range or mistyped key (see ``config_check``)."""
        return validate(self, source)

    @property
    def model_T(self) -> int:
        """Clip length the model consumes: ``data.T``, except 1 for the UNet baseline."""
        return model_T(self.model.name, self.data.T)

    def fingerprint(self) -> str:
        return hashlib.sha1(json.dumps(self.model_key(), sort_keys=True).encode()).hexdigest()[:12]


def flat_config(cfg: Config) -> dict[str, Any]:
    """``{"section.key": value}`` (and ``name``) of every key of ``cfg``."""
    d = cfg.to_dict()
    out: dict[str, Any] = {"name": d.pop("name")}
    for section, values in d.items():
        out.update({f"{section}.{k}": v for k, v in values.items()})
    return out


def config_changes(old: Config, new: Config, ignore: tuple[str, ...] = ()) -> list[str]:
    """``key (old -> new)`` for each key that differs between two configs, except ``ignore``."""
    a, b = flat_config(old), flat_config(new)
    return [f"{k} ({a[k]!r} -> {b[k]!r})" for k in a if a[k] != b[k] and k not in ignore]


def model_T(name: str, T: int) -> int:
    """Clip length model ``name`` consumes: the UNet baseline always sees T = 1."""
    return 1 if name == "unet" else T


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", tuple: "a list of ints"}


def _coerce(value: Any, current: Any) -> Any:
    """Convert a YAML/CLI value to the type of the field's current value."""
    if isinstance(current, bool):
        text = str(value).lower()
        if text not in TRUE + FALSE:
            raise ValueError(value)
        return text in TRUE
    if isinstance(current, tuple):
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        return tuple(int(v) for v in value)
    if isinstance(current, int):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(current, float):
        return float(value)
    return str(value)


def _typed(key: str, value: Any, current: Any) -> Any:
    """``_coerce`` with an error that names the key and the expected type."""
    try:
        return _coerce(value, current)
    except (ValueError, TypeError, OverflowError):
        expected = TYPE_NAMES.get(type(current), "a string")
        raise ConfigError(f"{key} = {value!r}: expected {expected}") from None


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    """Apply ``{"section.key": value}`` (or nested dicts) onto ``cfg`` in place."""
    flat: dict[str, Any] = {}
    for k, v in overrides.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                flat[f"{k}.{k2}"] = v2
        else:
            flat[k] = v
    for key, value in flat.items():
        parts = key.split(".")
        if len(parts) == 1:
            if parts[0] != "name":
                raise ConfigError(f"unknown config key {key!r}")
            cfg.name = str(value)
            continue
        section, attr = parts if len(parts) == 2 else (key, "")
        sub = getattr(cfg, section, None)
        if sub is None or not dataclasses.is_dataclass(sub):
            raise ConfigError(f"unknown config section {section!r} in {key!r}")
        names = {f.name for f in fields(sub)}
        if attr not in names:
            raise ConfigError(f"unknown config key {key!r}; {section} has: {sorted(names)}")
        setattr(sub, attr, _typed(key, value, getattr(sub, attr)))
    return cfg


def preset_names() -> list[str]:
    files = resources.files("ddlvad") / "configs"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> Config:
    """Build a Config from a packaged preset name or a YAML file path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = read_text(path)
    else:
        res = resources.files("ddlvad") / "configs" / f"{name}.yaml"
        if not res.is_file():
            raise ValueError(f"unknown preset {name!r}; available: {preset_names()}")
        text = res.read_text()
    return config_from_yaml(text, str(path) if path.exists() else f"preset {name}")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping holding a key twice (plain YAML keeps the
    last one and silently drops the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}, first at line {seen[key]}",
                    key_node.start_mark,
                )
            seen.setdefault(key, line)
        return super().construct_mapping(node, deep)


def config_from_yaml(text: str, source: str) -> Config:
    """A Config from YAML text; ConfigError naming ``source`` when the YAML or a key is bad
    (a key given twice included)."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ConfigError(f"{source}: not valid YAML{where} ({problem})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of config sections, got {data!r:.60}")
    try:
        return apply_overrides(Config(), data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def parse_set(items: list[str]) -> dict[str, str]:
    """Parse ``["train.lr=0.01", ...]`` into a dict."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out
