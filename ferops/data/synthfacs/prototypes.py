"""Sample AU intensities for an emotion from the EMFACS prototype table (prototypes.yaml).

The table is data, not code, so a FACS-literate reader can check and amend it
without reading Python. Sampling jitters intensities and drops or adds AUs:
posed datasets are not clean prototypes either, and the class overlap that
results is what makes the recognition task non-trivial.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import yaml

from ferops.data.vocab import AU_CODES


@lru_cache(maxsize=1)
def prototype_table() -> dict:
    text = resources.files("ferops.data.synthfacs").joinpath("prototypes.yaml").read_text()
    table = yaml.safe_load(text)
    for set_name, spec in table["sets"].items():
        for emotion, alternatives in spec["emotions"].items():
            for alt in alternatives:
                if not {str(k) for k in alt.get("required") or ()} <= {str(k) for k in alt.get("core") or {}}:
                    raise ValueError(f"prototypes.yaml {set_name}/{emotion}: every `required` AU must be a core AU")
                for key in list(alt.get("core", {})) + list(alt.get("optional", {}) or {}):
                    code = int(str(key).lstrip("UuLR"))
                    if code not in AU_CODES:
                        raise ValueError(f"prototypes.yaml {set_name}/{emotion}: AU{code} is not rendered")
    return table


def emotions(set_name: str) -> tuple[str, ...]:
    return tuple(prototype_table()["sets"][set_name]["emotions"])


def sample_independent_aus(rng: np.random.Generator, prevalence: float,
                           intensity: tuple[float, float] = (1.0, 5.0)) -> dict[str, float]:
    """Every rendered AU on or off by its own coin (probability `prevalence`), at a uniform intensity.

    Emotion prototypes tie AUs together (AU6 with AU12, AU1 with AU2), so on
    prototype data an AU detector can score by recognising the emotion. Drawn
    independently, each AU has to be seen for itself: this is the AU-balanced
    training set of the AU experiments and the probe set of the filter analysis.
    Sided AUs (12, 14) come bilateral, left or right with equal odds.
    """
    aus: dict[str, float] = {}
    for code in AU_CODES:
        if rng.random() >= prevalence:
            continue
        value = float(rng.uniform(*intensity))
        if code in (12, 14):
            aus[str(rng.choice(["", "L", "R"])) + str(code)] = value
        else:
            aus[str(code)] = value
    return aus


def sample_aus(emotion: str, rng: np.random.Generator, set_name: str = "posed") -> tuple[dict[str, float], int]:
    """(AU key -> intensity, index of the prototype alternative used) for one sample."""
    spec = prototype_table()["sets"][set_name]
    if emotion not in spec["emotions"]:
        raise ValueError(f"no {set_name} prototype for {emotion!r}; known: {sorted(spec['emotions'])}")
    jitter = spec["jitter"]
    alternatives = spec["emotions"][emotion]
    weights = np.array([alt.get("weight", 1.0) for alt in alternatives], float)
    choice = int(rng.choice(len(alternatives), p=weights / weights.sum()))
    alt = alternatives[choice]
    side = "L" if rng.random() < 0.5 else "R"

    def draw(mean: float) -> float:
        return min(max(float(rng.normal(mean, jitter["sd"])), jitter["min"]), jitter["max"])

    def key_of(raw) -> str:
        raw = str(raw)
        return side + raw[1:] if raw.startswith("U") else raw

    core = list((alt.get("core") or {}).items())
    required = {str(k) for k in alt.get("required") or ()}  # the dataset's criterion AUs are never dropped
    kept = [item for item in core if str(item[0]) in required or rng.random() >= jitter["drop"]] or core[:1]
    aus = {key_of(k): draw(v) for k, v in kept}
    for k, (probability, mean) in (alt.get("optional") or {}).items():
        if rng.random() < probability:
            aus[key_of(k)] = draw(mean)
    if core and rng.random() < jitter["stray"]:
        stray = str(AU_CODES[int(rng.integers(len(AU_CODES)))])
        aus.setdefault(stray, float(rng.uniform(jitter["min"], jitter["stray_max"])))
    return aus, choice
