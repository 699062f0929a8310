"""Who the face belongs to: the parameters that stay fixed across a subject's expressions.

Identity variation is what makes expression recognition a non-linear problem:
if every face had the same outline, skin and feature layout, a linear model on
raw pixels would read expressions off fixed pixel positions. Geometry is in
"face units" (origin between the eyes, x to image right, y down, the chin about
one unit below the eye line) so the renderer can pose and scale it freely.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Identity:
    face_width: float = 0.86      # half-width of the face at the cheekbones
    jaw_width: float = 0.72       # jaw width relative to face_width (square vs. pointed)
    jaw_squareness: float = 2.4   # superellipse exponent of the jaw line (2 = round)
    chin_y: float = 1.05          # chin distance below the eye line
    eye_spacing: float = 0.34     # half the distance between eye centres
    eye_width: float = 0.135      # half-width of the eye opening
    eye_height: float = 0.055     # upper-lid height above the eye axis
    brow_thickness: float = 0.04
    brow_height: float = 0.20     # brow above the eye axis
    brow_arch: float = 0.03
    nose_length: float = 0.40     # nose tip below the eye line
    nose_width: float = 0.14      # half-width of the nostril wings
    mouth_width: float = 0.30     # half-width of the closed mouth
    mouth_gap: float = 0.25       # nose tip to mouth line
    upper_lip: float = 0.055      # upper lip thickness
    lower_lip: float = 0.07       # lower lip thickness
    skin_tone: float = 0.6        # 0 dark .. 1 light
    skin_warmth: float = 0.5      # 0 olive .. 1 rosy
    hair_tone: float = 0.2        # 0 black .. 1 blond
    hairline: float = -0.62       # hairline height (y, above the eye line is negative)
    hair_volume: float = 0.08     # how far hair stands off the skull
    hair_length: float = 0.3      # 0 short .. 1 long (hair beside the jaw)
    age: float = 0.3              # 0 young .. 1 old: depth of permanent lines
    iris_tone: float = 0.3        # 0 dark brown .. 1 light blue
    clothing: float = 0.5         # hue of the shirt (only visible at the bottom edge)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        """Draw an identity; ranges are wide enough that faces differ at 48 px."""
        u = rng.uniform
        age = float(rng.beta(1.6, 2.6))
        return cls(
            face_width=u(0.78, 0.93),
            jaw_width=u(0.55, 0.85),
            jaw_squareness=u(2.0, 3.2),
            chin_y=u(0.96, 1.14),
            eye_spacing=u(0.30, 0.37),
            eye_width=u(0.12, 0.15),
            eye_height=u(0.045, 0.065),
            brow_thickness=u(0.025, 0.06),
            brow_height=u(0.17, 0.24),
            brow_arch=u(0.0, 0.05),
            nose_length=u(0.34, 0.46),
            nose_width=u(0.11, 0.17),
            mouth_width=u(0.26, 0.34),
            mouth_gap=u(0.21, 0.28),
            upper_lip=u(0.04, 0.07),
            lower_lip=u(0.055, 0.09),
            skin_tone=float(rng.beta(2.2, 1.6)),
            skin_warmth=u(0.0, 1.0),
            hair_tone=float(rng.beta(1.2, 2.5)),
            hairline=u(-0.85, -0.55) + 0.15 * age,
            hair_volume=u(0.02, 0.16),
            hair_length=u(0.0, 1.0),
            age=age,
            iris_tone=float(rng.beta(1.2, 3.0)),
            clothing=u(0.0, 1.0),
        )

    def as_dict(self) -> dict:
        return asdict(self)
