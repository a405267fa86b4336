"""Typed run configuration.

The YAML config is validated once, here, into a frozen ``RunConfig``; everything
downstream takes typed objects. Unknown keys are rejected (``extra="forbid"``).
Precedence: command-line flags > the config file > the packaged defaults
(``pipeline/defaults/default.yaml``, the same text as ``configs/default.yaml``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import InputError
from pipeline.schema import DEFAULT_INVALID_SCL, VIOLATIONS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentinelHubConfig(_Model):
    base_url: str = "https://services.sentinel-hub.com"
    token_url: str = (
        "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token"
    )
    # Credentials: the SH_CLIENT_ID / SH_CLIENT_SECRET environment variables win over these.
    client_id: SecretStr | None = Field(default=None, repr=False)
    client_secret: SecretStr | None = Field(default=None, repr=False)
    # The Process API returns at most 2500 x 2500 pixels per request.
    max_tile_px: int = Field(2500, ge=16, le=2500)
    page_size: int = Field(100, ge=1, le=100)


class StacApiConfig(_Model):
    url: str = "https://earth-search.aws.element84.com/v1"
    collection: str = "sentinel-2-l2a"
    page_size: int = Field(100, ge=1, le=1000)
    # Fetched tiles are cut at this many 10 m pixels per side.
    max_tile_px: int = Field(2500, ge=16, le=10000)


class RetryConfig(_Model):
    attempts: int = Field(4, ge=1, le=20)
    """Tries per request on HTTP 429, 5xx and dropped connections."""
    backoff_s: float = Field(5.0, ge=0, le=600)
    """Wait before the second try; tripled for each further try. A ``Retry-After``
    header from the service overrides it."""
    timeout_s: float = Field(120.0, gt=0, le=3600)
    """Give up on one request after this long."""


class ProviderConfig(_Model):
    kind: Literal["catalog", "sentinelhub", "stac_api"] = "catalog"
    catalog: str | None = None
    archive: str | None = None
    band_aliases: dict[str, str] = Field(default_factory=dict)
    # Scene-level cloud cover (percent) above which an acquisition is not fetched: a
    # scene that cloudy rarely has a clear look at a site and costs the same to fetch.
    max_cloud_cover: float = Field(80.0, ge=0, le=100)
    # Metres added around each site's bounding box: room for digging just outside a
    # boundary and for the cloud-edge buffer.
    buffer_m: float = Field(200.0, ge=0, le=10000)
    retry: RetryConfig = RetryConfig()
    sentinelhub: SentinelHubConfig = SentinelHubConfig()
    stac_api: StacApiConfig = StacApiConfig()


class InputsConfig(_Model):
    sites: str | None = None
    permits: str | None = None
    zones: str | None = None


class PeriodConfig(_Model):
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> PeriodConfig:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class GridConfig(_Model):
    resolution: float = Field(10.0, gt=0)
    # A projected CRS (``EPSG:32649``, ``EPSG:4547``...) for the analysis grid; null: the
    # UTM zone of the area of interest's (or the sites') centroid. Items in other CRSs
    # are warped onto it.
    crs: str | None = None

    @field_validator("crs")
    @classmethod
    def _projected(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_user_input(value)
        except CRSError:
            raise ValueError(f"not a CRS: {value!r}") from None
        if not crs.is_projected:
            raise ValueError(f"{value} is not a projected CRS (the grid is in metres)")
        return value

    chunk_size: int = Field(512, ge=64, le=8192)


class MaskingConfig(_Model):
    invalid_scl: tuple[int, ...] = DEFAULT_INVALID_SCL
    buffer_pixels: int = Field(1, ge=0, le=10)


class SurfaceConfig(_Model):
    vegetated_ndvi_min: float = Field(0.4, ge=-1, le=1)
    bare_ndvi_max: float = Field(0.2, ge=-1, le=1)
    bare_bsi_min: float = Field(0.0, ge=-1, le=1)
    water_ndwi_min: float = Field(0.1, ge=-1, le=1)


class DetectionConfig(_Model):
    min_mapping_unit_ha: float = Field(0.1, gt=0)
    closed_site_mmu_ha: float = Field(0.03, gt=0)
    fresh_red_min: float = Field(0.09, ge=0, le=1)
    fresh_bsi_min: float = Field(0.02, ge=-1, le=1)
    fresh_ndvi_max: float = Field(0.12, ge=-1, le=1)
    missed_cloud_red_min: float = Field(0.2, ge=0, le=2)
    soil_ndvi_max: float = Field(0.25, ge=-1, le=1)
    soil_bsi_min: float = Field(0.15, ge=-1, le=1)
    soil_slant_ndvi: float = Field(0.2, ge=-1, le=1)
    soil_bsi_slope: float = Field(1.0, ge=0, le=10)
    soil_rise_ndvi: float = Field(0.16, ge=-1, le=1)
    soil_rise_red_min: float = Field(0.2, ge=0, le=2)
    prior_ndvi_min: float = Field(0.3, ge=-1, le=1)
    prior_observations: int = Field(3, ge=1, le=20)
    abrupt_ndvi_drop: float = Field(0.2, ge=0, le=2)
    abrupt_bsi_rise: float = Field(0.15, ge=0, le=2)
    abrupt_red_rise: float = Field(0.04, ge=0, le=1)
    abrupt_combined_min: float = Field(2.0, ge=0, le=3)
    stand_out_combined_min: float = Field(1.0, ge=0, le=4)
    season_window_days: int = Field(20, ge=5, le=120)
    season_bare_max_fraction: float = Field(0.2, ge=0, le=1)
    season_low_ndvi_max: float = Field(0.3, ge=-1, le=1)
    season_low_bsi_min: float = Field(0.1, ge=-1, le=1)
    gradual_gap_days: int = Field(45, ge=1)
    die_back_green_loss: float = Field(0.5, ge=0, le=10)
    bare_memory_days: int = Field(1095, ge=0)
    bare_prone_run_days: int = Field(50, ge=0)
    bare_prone_season_days: int = Field(60, ge=0, le=183)
    late_change_looks: int = Field(3, ge=1, le=255)
    regional_change_share: float = Field(0.03, ge=0, le=1)
    regional_change_min_pixels: int = Field(500, ge=1)
    regional_canopy_ndvi_min: float = Field(0.62, ge=-1, le=2)
    cloud_edge_pixels: int = Field(0, ge=0, le=50)
    cloud_flat_bsi_max: float = Field(0.1, ge=-1, le=1)
    cloud_flat_green_fall: float = Field(0.4, ge=0, le=2)
    bare_shift_bsi: float = Field(0.05, ge=0, le=2)
    bare_shift_red: float = Field(0.15, ge=0, le=10)
    persistence_min: float = Field(0.7, ge=0, le=1)
    outside_permit_buffer_m: float = Field(100.0, ge=0)
    violation_precedence: tuple[str, ...] = (
        "illegal_site",
        "no_mining_zone",
        "suspended_site",
        "restored_land",
        "outside_permit",
        "within_permit",
        "unregistered",
    )

    @field_validator("violation_precedence")
    @classmethod
    def _known_violations(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in VIOLATIONS]
        if unknown:
            raise ValueError(f"unknown violation {unknown[0]!r}; expected one of {VIOLATIONS}")
        missing = [v for v in VIOLATIONS if v not in value]
        if missing:
            raise ValueError(f"precedence must list every violation; missing {missing}")
        return value


class TargetThresholds(_Model):
    season_peak_ndvi_min: float = Field(ge=-1, le=1)
    vegetated_fraction_min: float = Field(ge=0, le=1)
    water_fraction_min: float = Field(0.0, ge=0, le=1)


def _default_targets() -> dict[str, TargetThresholds]:
    return {
        "forest": TargetThresholds(season_peak_ndvi_min=0.6, vegetated_fraction_min=0.6),
        "farmland": TargetThresholds(season_peak_ndvi_min=0.55, vegetated_fraction_min=0.5),
        "grassland": TargetThresholds(season_peak_ndvi_min=0.45, vegetated_fraction_min=0.5),
        "landscape": TargetThresholds(
            season_peak_ndvi_min=0.3, vegetated_fraction_min=0.2, water_fraction_min=0.3
        ),
    }


class RecoveryConfig(_Model):
    assessment_days: int = Field(365, ge=90, le=1100)
    greening_gain_min: float = Field(0.1, ge=0, le=1)
    regression_drop_min: float = Field(0.15, ge=0, le=1)
    disturbed_fraction_min: float = Field(0.05, ge=0, le=1)
    min_clear_fraction: float = Field(0.3, ge=0, le=1)
    targets: dict[str, TargetThresholds] = Field(default_factory=_default_targets)
    # Folder of a trained recovery model (model.skops, model_trees.npz, model_card.json);
    # null: the shipped default (models/recovery-default); "rules": the rule set.
    model: str | None = None


class ReportConfig(_Model):
    language: Literal["zh-CN", "en"] = "zh-CN"
    title: str | None = None


class ComputeConfig(_Model):
    scheduler: str | None = None
    workers: int | None = Field(None, ge=1, le=256)


class RunConfig(_Model):
    provider: ProviderConfig = ProviderConfig()
    aoi: str | None = None
    inputs: InputsConfig = InputsConfig()
    period: PeriodConfig = PeriodConfig()
    grid: GridConfig = GridConfig()
    masking: MaskingConfig = MaskingConfig()
    surface: SurfaceConfig = SurfaceConfig()
    detection: DetectionConfig = DetectionConfig()
    recovery: RecoveryConfig = RecoveryConfig()
    report: ReportConfig = ReportConfig()
    compute: ComputeConfig = ComputeConfig()

    def config_hash(self) -> str:
        """A hash of the effective config, secrets excluded, for provenance."""
        text = json.dumps(self.public_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def public_dict(self) -> dict[str, Any]:
        """The config as plain data with credentials removed."""
        data = self.model_dump(mode="json")
        sh = data["provider"]["sentinelhub"]
        for key in ("client_id", "client_secret"):
            if sh.get(key):
                sh[key] = "***"
        return data


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", file=path, record=where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError("a config must be a mapping of keys", file=path)
    return data


def default_config_text() -> str:
    return resources.files("pipeline").joinpath("defaults/default.yaml").read_text("utf-8")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    """Make relative paths in a config file relative to that file's folder."""

    def fix(node: dict[str, Any], key: str) -> None:
        value = node.get(key)
        if (
            isinstance(value, str)
            and value
            and "://" not in value
            and not Path(value).is_absolute()
        ):
            node[key] = str((base_dir / value).resolve())

    provider = data.get("provider")
    if isinstance(provider, dict):
        fix(provider, "catalog")
        fix(provider, "archive")
    fix(data, "aoi")
    recovery = data.get("recovery")
    if isinstance(recovery, dict) and recovery.get("model") != "rules":
        fix(recovery, "model")
    inputs = data.get("inputs")
    if isinstance(inputs, dict):
        for key in ("sites", "permits", "zones"):
            fix(inputs, key)


def _config_data(path: str | Path | None, overrides: dict[str, Any] | None) -> tuple[dict, str]:
    """The merged raw config (defaults < file < overrides) and the name of its source."""
    data = yaml.safe_load(default_config_text()) or {}
    source = "default config"
    if path is not None:
        path = Path(path)
        user = _read_yaml(path)
        _resolve_paths(user, path.resolve().parent)
        data = _merge(data, user)
        source = str(path)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    return data, source


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Load the packaged defaults, merge a YAML file over them, then dotted-key overrides.

    ``overrides`` maps dotted keys (``"period.end"``) to values; ``None`` values are
    ignored so that absent CLI flags leave the file's value alone.
    """
    data, source = _config_data(path, overrides)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise config_errors(exc, source, overrides)[0] from None


def config_errors(
    exc: ValidationError, source: str, overrides: dict[str, Any] | None = None
) -> list[InputError]:
    """Every problem pydantic found, each naming the dotted key and where it was set:
    the config file, or the command line for a key (or section) an override set."""
    given = [k for k, v in (overrides or {}).items() if v is not None]
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or None
        msg = "unknown config key" if err["type"] == "extra_forbidden" else err["msg"]
        from_cli = field is not None and any(
            k == field or k.startswith(field + ".") or field.startswith(k + ".") for k in given
        )
        out.append(InputError(msg, file="command line" if from_cli else source, field=field))
    return out


def check_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> tuple[RunConfig | None, list[InputError]]:
    """Like ``load_config``, but returns every problem instead of raising the first."""
    try:
        data, source = _config_data(path, overrides)
    except InputError as exc:
        return None, [exc]
    try:
        return RunConfig.model_validate(data), []
    except ValidationError as exc:
        return None, config_errors(exc, source, overrides)
