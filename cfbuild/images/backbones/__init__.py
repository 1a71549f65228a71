"""Backbones by name, weights by file, one module each behind a registry (`BACKBONES`). Each
backbone declares its network, its preprocessing, its feature width and where its weights come
from; the extraction's identity (backbone, weights sha256, preprocessing) is recorded in the
features file, so files made differently are never mixed. Every module of this package is imported
with it: a new backbone is one new file (`docs/EXTENDING.md`), listed in `cfbuild features --help`
and docs/IMAGES.md (`make docs`), and checked by tests/test_backbones.py.

Any name outside the registry is tried as a timm model (`timm.create_model`, its pretrained config's
preprocessing) when timm is importable: a fallback, not a registered backbone.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cfpairs.errors import UserError
from cfpairs.registering import discover, ordered_register
from cfpairs.writer import file_sha256

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """pixels (0-255) / scale, then (x - mean) / std per channel. The image is resized to `size` x
    `size` whole (features: nothing cut off, boxes map back to the image), or with `crop` its short
    side to size / crop_fraction and the centre size x size kept (ImageNet evaluation)."""
    size: int
    mean: tuple
    std: tuple
    scale: float = 255.0
    interpolation: str = "bilinear"
    crop: bool = False
    crop_fraction: float = 0.875

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Backbone:
    """A registered backbone: `network()` builds it untrained (plain torch, imported when called);
    its weights come from `--weights`, else `default_weights()`, else torchvision's download."""
    name: str
    preprocessing: Preprocessing
    summary: str                 # one line: what it is and its features
    weights_help: str            # how to get weights, for the error when none are found
    width: int = 0               # the pooled feature vector's width
    weights_doc: str = ""        # where its weights come from, for docs/IMAGES.md
    preprocessing_doc: str = ""  # its preprocessing in words, for docs/IMAGES.md
    order: float = 50.0

    def network(self):
        raise NotImplementedError

    def default_weights(self) -> Path | None:
        """A weights file already on this machine, or None."""
        return None


BACKBONES: dict[str, Backbone] = {}
DEFAULT = "efficientnet-lite0"
register = ordered_register(BACKBONES)  # register(Backbone(...)): an instance, kept in its `order`


def backbone_help() -> str:
    """`--backbone`'s help: the registered names, then the timm fallback."""
    return f"{', '.join(BACKBONES)}, or a timm model name (with timm installed)."


def tensors_sha256(state: dict) -> str:
    """Weights that come from a hub, not a file: the sha256 of their names and bytes, in order."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(key.encode() + b"\0" + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_state_dict(path: Path) -> dict:
    """A state dict from a weights file (torch.load with weights_only: no code runs); a checkpoint
    holding it under `state_dict` or `model` is unwrapped."""
    import torch  # noqa: PLC0415
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise UserError(f"--weights {path}: not a readable torch weights file ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:160]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"--weights {path}: expected a state dict (names to tensors)")
    return state


def load_weights(network, state: dict, path: Path, name: str, assign: bool = False) -> None:
    """`state` into `network`, refused by key and shape unless it is `name`'s. `assign`: the network's
    tensors become the file's (each in the network's dtype) instead of being copied into."""
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {what} (first: {v[0]})" for v, what in ((missing, "missing"), (unexpected, "unexpected"),
                                                                   (wrong, "of another shape")) if v]
        raise UserError(f"--weights {path}: not {name}'s weights: keys {'; '.join(parts)}")
    if assign:
        network.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, assign=True)
    else:
        network.load_state_dict(state)


def filled(backbone: Backbone, state: dict, path, name: str):
    """The backbone holding `state`. It is built on torch's meta device, where no initial values are
    drawn (they were most of a load: 0.2 s of resnet50's 0.3 s), and its tensors become the file's;
    a network with tensors outside its state dict (non-persistent buffers) is built the usual way."""
    import torch  # noqa: PLC0415

    with torch.device("meta"):
        shell = backbone.network()
    load_weights(shell, state, path, name, assign=True)
    module = getattr(shell, "model", shell)  # Calls keeps the network as .model
    if not any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        return shell
    network = backbone.network()
    load_weights(network, state, path, name)
    return network


@dataclass
class Loaded:
    """A network ready to run (`features(images)`, `classify(feature_map)`) and its extraction identity."""
    network: object
    preprocessing: Preprocessing
    identity: dict


def load_backbone(name: str, weights: Path | None = None, image_size: int | None = None,
                  crop: bool = False) -> Loaded:
    """The named backbone with its weights (`weights`, else its default file, else the hub's)."""
    if name not in BACKBONES:
        return _timm_backbone(name, weights, image_size, crop)
    backbone = BACKBONES[name]
    path = Path(weights) if weights else backbone.default_weights()
    if path is None:
        state, source = _torchvision_weights(name, backbone), f"torchvision:{name}"
        sha = tensors_sha256(state)
    else:
        state, source, sha = read_state_dict(path), path.name, file_sha256(path)
    network = filled(backbone, state, path or source, name)
    prep = _resized(backbone.preprocessing, image_size, crop)
    return Loaded(network.eval(), prep, identity(name, source, sha, prep))


def identity(name: str, source: str, sha: str, prep: Preprocessing) -> dict:
    return {"backbone": name, "weights": {"file": source, "sha256": sha}, "preprocessing": prep.to_dict()}


def _resized(prep: Preprocessing, image_size: int | None, crop: bool) -> Preprocessing:
    return replace(prep, size=image_size or prep.size, crop=crop)


def _torchvision_weights(name: str, backbone: Backbone) -> dict:
    try:
        models = importlib.import_module("torchvision.models")
        weights = models.get_model_weights(name).DEFAULT
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # not installed, not importable (a CUDA build beside a CPU torch), offline
        raise UserError(f"--backbone {name}: no weights ({type(exc).__name__}: {' '.join(str(exc).split())[:120]}); "
                        f"give {backbone.weights_help}") from None


class Calls:
    """A model whose own methods have other names, behind `features(images)` and
    `classify(feature_map)` (timm's models; a network whose layers are named `features`)."""

    def __init__(self, model, features, classify, feature_dim: int):
        self.model, self.features, self.classify, self.feature_dim = model, features, classify, feature_dim

    def state_dict(self):
        return self.model.state_dict()

    def load_state_dict(self, state, assign: bool = False):
        return self.model.load_state_dict(state, assign=assign)

    def to(self, device):
        self.model.to(device)
        return self

    def eval(self):
        self.model.eval()
        return self


def _timm_backbone(name: str, weights: Path | None, image_size: int | None, crop: bool) -> Loaded:
    try:
        timm = importlib.import_module("timm")
    except Exception as exc:  # ImportError, or timm's own import of a torchvision that cannot load
        raise UserError(f"--backbone {name}: unknown (built in: {', '.join(BACKBONES)}); other names are timm "
                        f"models, and timm is not importable here ({type(exc).__name__}): pip install timm") from None
    if name not in timm.list_models(pretrained=True) and name not in timm.list_models():
        raise UserError(f"--backbone {name}: neither built in ({', '.join(BACKBONES)}) nor a timm model")
    overlay = {"file": str(weights)} if weights else None
    try:
        model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
    except Exception as exc:  # a download that cannot happen, a file of other weights
        raise UserError(f"--backbone {name}: timm could not load its weights ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:120]}); give --weights FILE") from None
    cfg = model.pretrained_cfg
    prep = Preprocessing(int(cfg.get("input_size", (3, 224, 224))[-1]), tuple(cfg["mean"]), tuple(cfg["std"]),
                         interpolation=cfg.get("interpolation", "bilinear"),
                         crop_fraction=float(cfg.get("crop_pct", 0.875)))
    prep = _resized(prep, image_size, crop)
    sha = file_sha256(Path(weights)) if weights else tensors_sha256(model.state_dict())
    source = Path(weights).name if weights else f"timm:{name}"
    network = Calls(model, model.forward_features, model.forward_head, model.num_features)
    return Loaded(network.eval(), prep, identity(name, source, sha, prep))


discover(__name__, __path__)
