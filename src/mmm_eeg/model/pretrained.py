"""Our checkpoint format: a directory with ``config.json`` and ``model.safetensors``.

Loading never unpickles: safetensors holds only tensors, and the config is JSON.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Self

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mmm_eeg.atomic import atomic_path
from mmm_eeg.errors import UserInputError
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.validation import check_range, check_type

#: Keys every config.json has besides the model's own ``config()``.
_OWN_KEYS = {"model", "library_version", "metadata", "feature_spec"}
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for modules that describe themselves.

    Subclasses implement ``config()`` (a JSON-ready dict) and ``_from_config(config)``, and take
    ``feature_spec`` as a constructor argument (``_from_config`` passes :func:`spec_in` of the
    config), so a model's input contract is never attached after it is built.

    Attributes
    ----------
    feature_spec : FeatureSpec | None
        The input contract the model was trained on (windows, DE, topology, standardisation),
        saved in ``config.json`` and restored on load; None when unknown.
    """

    feature_spec: FeatureSpec | None = None

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> Self:
        raise NotImplementedError

    def save_pretrained(
        self, directory: str | Path, metadata: dict[str, Any] | None = None
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically).

        Parameters
        ----------
        directory : str | path-like
            Created if needed.
        metadata : dict | None
            Free-form training metadata stored in the config under ``"metadata"``.

        Returns
        -------
        Path
            The directory.
        """
        directory = Path(directory)
        config = {
            **self.to_dict(),
            "library_version": _library_version(),
            "metadata": metadata or {},
        }
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp))
        with atomic_path(directory / CONFIG_NAME) as tmp:
            tmp.write_text(json.dumps(config, indent=2))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> Self:
        """Load a model written by :meth:`save_pretrained`.

        Parameters
        ----------
        directory : str | path-like
            A directory with ``config.json`` and ``model.safetensors``.
        map_location : str
            Device for the weights.

        Returns
        -------
        The model, in eval mode.
        """
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.is_file():
                raise UserInputError(
                    f"{directory} is not an mmm-eeg model directory: {path.name} is missing. "
                    "Give a directory written by save_pretrained (or `mmm-eeg convert`)."
                )
        try:
            config = json.loads(config_path.read_text())
        except json.JSONDecodeError as err:
            raise UserInputError(f"{config_path}: not valid JSON ({err}).") from err
        if config.get("model") != cls.__name__:
            raise UserInputError(
                f"{directory} holds a {config.get('model')!r}, not a {cls.__name__}; load it "
                f"with {config.get('model')}.from_pretrained."
            )
        model = cls.from_config(config, str(config_path))
        try:
            state = load_file(str(weights_path), device=map_location)
        except (OSError, SafetensorError) as err:
            raise UserInputError(f"{weights_path}: unreadable safetensors file ({err}).") from err
        load_weights(model, state, str(weights_path))
        return model.eval()  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        """The model's description as ``config.json`` holds it (kind, config, feature spec)."""
        return {
            "model": type(self).__name__,
            **self.config(),
            "feature_spec": None if self.feature_spec is None else self.feature_spec.to_dict(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], where: str) -> Self:
        """A new model (random weights) from a description read from ``where``, checked."""
        try:
            model = cls._from_config(config)
        except UserInputError as err:
            raise UserInputError(f"{where}: {err}") from err
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise UserInputError(
                f"{where}: malformed model config ({type(err).__name__}: {err}); the file "
                "was edited or is not from mmm-eeg."
            ) from err
        unknown = sorted(set(config) - _OWN_KEYS - set(model.config()))
        if unknown:
            raise UserInputError(f"{where}: unknown keys {unknown}; not an mmm-eeg config.")
        return model


def spec_in(config: dict[str, Any]) -> FeatureSpec | None:
    """The :class:`FeatureSpec` a saved config records (None when it records none)."""
    values = config.get("feature_spec")
    return FeatureSpec.from_dict(values) if values else None


def load_weights(model: Any, state: dict[str, Any], where: str) -> None:
    """Load ``state`` into ``model``: every key must match, both ways."""
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise UserInputError(
            f"{where} does not match its config: missing {result.missing_keys}, "
            f"unexpected {result.unexpected_keys}."
        )


def _library_version() -> str:
    try:
        return version("mmm-eeg")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def check_config(
    config: dict[str, Any], limits: dict[str, tuple[type | tuple, float, float]]
) -> None:
    """Check types and ranges of config values read from disk, before they size any tensor.

    ``limits`` maps a key to (types, low, high); a crafted or damaged config.json is refused
    with the key, its value and the allowed range.
    """
    for key, (types, low, high) in limits.items():
        if key not in config:
            raise UserInputError(f"config lacks {key!r}.")
        value = config[key]
        if isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)
        ):
            raise UserInputError(f"config {key!r} must be a number, got {value!r}.")
        check_type(key, value, types)
        check_range(key, value, low=low, high=high)
