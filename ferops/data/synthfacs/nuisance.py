"""Everything about an image that is not the face: pose, framing, light, optics, occluders.

Kept separate from identity and expression so presets can dial it per dataset
(CK+ is frontal and evenly lit, FER2013 is not) and so every value can go into
the manifest, where robustness analyses can condition on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Nuisance:
    rotation: float = 0.0          # in-plane roll, degrees (positive = counter-clockwise)
    yaw: float = 0.0               # head turn, radians; foreshortens and shifts features
    scale: float = 1.0             # face size relative to the preset framing
    shift_x: float = 0.0           # face centre offset, fraction of image width
    shift_y: float = 0.0
    light_angle: float = 0.0       # direction of the brightness gradient, degrees
    light_strength: float = 0.0    # gradient amplitude (0 = even light)
    brightness: float = 1.0        # global exposure gain
    blur: float = 0.0              # Gaussian sigma in output pixels
    noise: float = 0.0             # sensor noise sigma in grey levels
    occlusions: int = 0            # number of occluding patches (hands, hair, objects)
    background: float = 0.55       # background grey level 0..1
    clutter: int = 0               # background blobs (wild photos are not studio shots)
    seed: int = 0                  # draws noise, occluder and clutter geometry

    @classmethod
    def sample(cls, rng: np.random.Generator, profile: str = "studio") -> "Nuisance":
        """Draw nuisance for a capture setting: 'studio' (CK+, CASME II), 'wild' (FER2013) or 'webcam'."""
        seed = int(rng.integers(0, 2**31 - 1))
        if profile == "studio":
            return cls(
                rotation=float(rng.normal(0, 2.0)),
                yaw=float(rng.normal(0, 0.05)),
                scale=float(rng.uniform(0.95, 1.05)),
                shift_x=float(rng.normal(0, 0.015)),
                shift_y=float(rng.normal(0, 0.015)),
                light_angle=float(rng.uniform(0, 360)),
                light_strength=float(rng.uniform(0.0, 0.08)),
                brightness=float(rng.uniform(0.9, 1.08)),
                blur=float(rng.uniform(0.0, 0.3)),
                noise=float(rng.uniform(0.5, 2.5)),
                occlusions=0,
                background=float(rng.uniform(0.3, 0.8)),
                clutter=0,
                seed=seed,
            )
        if profile == "wild":
            return cls(
                rotation=float(rng.normal(0, 9.0)),
                yaw=float(rng.uniform(-0.55, 0.55)),
                scale=float(rng.uniform(0.85, 1.2)),
                shift_x=float(rng.normal(0, 0.05)),
                shift_y=float(rng.normal(0, 0.05)),
                light_angle=float(rng.uniform(0, 360)),
                light_strength=float(rng.uniform(0.0, 0.55)),
                brightness=float(rng.uniform(0.7, 1.25)),
                blur=float(rng.choice([0.0, rng.uniform(0.3, 0.9)], p=[0.5, 0.5])),
                noise=float(rng.uniform(0.0, 7.0)),
                occlusions=int(rng.choice([0, 1, 2], p=[0.7, 0.25, 0.05])),
                background=float(rng.uniform(0.05, 0.95)),
                clutter=int(rng.integers(0, 6)),
                seed=seed,
            )
        if profile == "webcam":  # a laptop camera: turned heads, window light, soft focus, sensor noise
            return cls(
                rotation=float(rng.normal(0, 5.0)),
                yaw=float(rng.uniform(-0.35, 0.35)),
                scale=float(rng.uniform(0.9, 1.1)),
                shift_x=float(rng.normal(0, 0.03)),
                shift_y=float(rng.normal(0, 0.03)),
                light_angle=float(rng.choice([0.0, 180.0]) + rng.normal(0, 20)),
                light_strength=float(rng.uniform(0.3, 0.6)),
                brightness=float(rng.uniform(0.75, 1.15)),
                blur=float(rng.uniform(0.4, 0.9)),
                noise=float(rng.uniform(2.0, 6.0)),
                occlusions=0,
                background=float(rng.uniform(0.2, 0.9)),
                clutter=int(rng.integers(0, 3)),
                seed=seed,
            )
        raise ValueError(f"unknown nuisance profile {profile!r}; expected 'studio', 'wild' or 'webcam'")

    def as_dict(self) -> dict:
        return asdict(self)
