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
    rotation: float = 0.0          # head roll, degrees (positive = counter-clockwise); `ck+` framing aligns it away
    yaw: float = 0.0               # head turn, radians
    pitch: float = 0.0             # head nod, radians (positive = chin down)
    scale: float = 1.0             # face size relative to the framing (residual misframing of the crop)
    shift_x: float = 0.0           # face centre offset, fraction of image width
    shift_y: float = 0.0
    light_angle: float = -90.0     # where the key light comes from in the image plane, degrees (-90 = above)
    light_strength: float = 0.55   # key light's share of the light (0 = ambient only: flat)
    light_elevation: float = 25.0  # key light's angle off the camera axis, degrees (0 = from the camera)
    light_tint: float = 0.0        # light colour: -1 cool (daylight, blue) .. 1 warm (tungsten, orange)
    brightness: float = 1.0        # global exposure gain
    blur: float = 0.0              # Gaussian sigma in output pixels
    noise: float = 0.0             # sensor noise sigma in grey levels
    lowres: float = 1.0            # captured this many times smaller, then upsampled (1 = native)
    jpeg: int = 0                  # JPEG quality the image was saved at (0 = not compressed)
    occlusions: int = 0            # occluders in front of the face (hands, glasses, hair strands)
    background: float = 0.55       # background grey level 0..1
    clutter: int = 0               # background objects (wild photos are not studio shots)
    seed: int = 0                  # draws noise, occluder and clutter geometry

    @classmethod
    def sample(cls, rng: np.random.Generator, profile: str = "studio") -> "Nuisance":
        """Draw nuisance for a capture setting: 'studio' (CK+, CASME II), 'wild' (FER2013) or 'webcam'."""
        seed = int(rng.integers(0, 2**31 - 1))
        u = rng.uniform
        if profile == "studio":  # frontal head, soft key light from above, clean sensor
            return cls(
                rotation=float(rng.normal(0, 2.0)), yaw=float(rng.normal(0, 0.05)), pitch=float(rng.normal(0, 0.04)),
                scale=u(0.96, 1.04), shift_x=float(rng.normal(0, 0.012)), shift_y=float(rng.normal(0, 0.012)),
                light_angle=float(-90 + rng.normal(0, 25)), light_strength=u(0.5, 0.75), light_elevation=u(25, 50),
                light_tint=0.0, brightness=u(0.92, 1.08), blur=u(0.0, 0.3), noise=u(0.5, 2.0), lowres=1.0, jpeg=0,
                occlusions=0, background=u(0.3, 0.8), clutter=0, seed=seed,
            )
        if profile == "wild":  # web photos: any pose within ~30 degrees, light mostly from above, cheap optics, JPEG
            return cls(
                rotation=min(max(float(rng.normal(0, 10.0)), -30.0), 30.0), yaw=u(-0.5, 0.5),
                pitch=min(max(float(rng.normal(0, 0.2)), -0.5), 0.5),
                scale=u(0.9, 1.12), shift_x=float(rng.normal(0, 0.03)), shift_y=float(rng.normal(0, 0.03)),
                light_angle=float(-90 + rng.normal(0, 50)), light_strength=u(0.3, 0.75), light_elevation=u(20, 65),
                light_tint=u(-1, 1), brightness=u(0.75, 1.2),
                blur=float(rng.choice([0.0, u(0.3, 0.6)], p=[0.75, 0.25])), noise=u(0.0, 2.5),
                lowres=float(rng.choice([1.0, u(1.2, 1.6)], p=[0.8, 0.2])),
                jpeg=int(rng.choice([0, int(rng.integers(60, 95))], p=[0.4, 0.6])),
                occlusions=int(rng.choice([0, 1, 2], p=[0.75, 0.22, 0.03])), background=u(0.05, 0.95),
                clutter=int(rng.integers(0, 6)), seed=seed,
            )
        if profile == "webcam":  # a laptop camera: turned heads, window light, soft focus, sensor noise
            return cls(
                rotation=float(rng.normal(0, 5.0)), yaw=u(-0.35, 0.35), pitch=float(rng.normal(0, 0.1)),
                scale=u(0.92, 1.08), shift_x=float(rng.normal(0, 0.025)), shift_y=float(rng.normal(0, 0.025)),
                light_angle=float(rng.choice([0.0, 180.0]) + rng.normal(0, 20)), light_strength=u(0.5, 0.8),
                light_elevation=u(35, 65), light_tint=u(-0.8, 0.2), brightness=u(0.75, 1.15), blur=u(0.4, 0.9),
                noise=u(2.0, 6.0), lowres=u(1.0, 1.5), jpeg=int(rng.integers(50, 90)), occlusions=0,
                background=u(0.2, 0.9), clutter=int(rng.integers(0, 3)), seed=seed,
            )
        raise ValueError(f"unknown nuisance profile {profile!r}; expected 'studio', 'wild' or 'webcam'")

    def as_dict(self) -> dict:
        return asdict(self)
