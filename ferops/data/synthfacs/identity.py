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
    chin_y: float = 1.28          # chin distance below the eye line
    eye_spacing: float = 0.39     # half the distance between eye centres
    eye_width: float = 0.17       # half-width of the eye opening
    eye_height: float = 0.062     # upper-lid height above the eye axis
    brow_thickness: float = 0.06
    brow_height: float = 0.22     # brow above the eye axis
    brow_arch: float = 0.03
    nose_length: float = 0.52     # nose tip below the eye line
    nose_width: float = 0.18      # half-width of the nostril wings
    mouth_width: float = 0.31     # half-width of the closed mouth
    mouth_gap: float = 0.24       # nose tip to mouth line
    upper_lip: float = 0.06       # upper lip thickness
    lower_lip: float = 0.075      # lower lip thickness
    skin_tone: float = 0.6        # 0 dark .. 1 light
    skin_warmth: float = 0.5      # 0 olive .. 1 rosy
    hair_tone: float = 0.2        # 0 black .. 1 blond
    hairline: float = -0.85       # hairline height (y, above the eye line is negative)
    hair_volume: float = 0.08     # how far hair stands off the skull
    hair_length: float = 0.3      # 0 short .. 1 long (hair beside the jaw)
    age: float = 0.3              # 0 young .. 1 old: depth of permanent lines
    iris_tone: float = 0.3        # 0 dark brown .. 1 light blue
    clothing: float = 0.5         # hue of the shirt (only visible at the bottom edge)
    masculinity: float = 0.5      # 0 female-typical .. 1 male-typical shape (jaw, brow ridge, brows, lips)
    hair_style: int = 1           # index into hair.STYLES (short, side part, long, tied back, curly, receding)
    texture_seed: int = 0         # the skin and hair texture of this person (pores, blemishes, strands)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        """Draw an identity; ranges are wide enough that faces differ at 48 px.

        Sex-typical shape comes from one `masculinity` value that shifts jaw, brows,
        nose, lips and hair style together, as it does in people (CK+ is ~2/3 female).
        """
        u = rng.uniform
        age = float(rng.beta(1.6, 2.6))
        male = rng.random() < 0.4
        m = min(max(float(rng.normal(0.82 if male else 0.18, 0.12)), 0.0), 1.0)
        c = m - 0.5  # -0.5 female-typical .. +0.5 male-typical
        styles = (0.5, 0.25, 0.05, 0.0, 0.1, 0.1) if male else (0.05, 0.2, 0.4, 0.2, 0.15, 0.0)
        style = int(rng.choice(6, p=np.array(styles) / sum(styles)))
        if style == 5 and age < 0.35:
            style = 0
        return cls(
            face_width=u(0.78, 0.92) + 0.03 * c,
            jaw_width=min(max(float(u(0.58, 0.8) + 0.16 * c), 0.5), 0.92),
            jaw_squareness=u(2.1, 2.9) + 0.8 * c,
            chin_y=u(1.18, 1.36) + 0.06 * c,
            eye_spacing=u(0.36, 0.42),
            eye_width=u(0.155, 0.185),
            eye_height=u(0.052, 0.072) - 0.008 * c,
            brow_thickness=u(0.05, 0.072) + 0.025 * c,
            brow_height=u(0.2, 0.27) - 0.04 * c,
            brow_arch=u(0.015, 0.05) - 0.02 * c,
            nose_length=u(0.46, 0.58) + 0.03 * c,
            nose_width=u(0.15, 0.2) + 0.025 * c,
            mouth_width=u(0.28, 0.34),
            mouth_gap=u(0.21, 0.27) + 0.02 * c,
            upper_lip=u(0.05, 0.075) - 0.012 * c,
            lower_lip=u(0.065, 0.095) - 0.015 * c,
            skin_tone=float(rng.beta(2.2, 1.6)),
            skin_warmth=u(0.0, 1.0),
            hair_tone=float(rng.beta(1.2, 2.5)),
            hairline=u(-1.0, -0.78) + 0.12 * age + (0.12 if style == 5 else 0.0),
            hair_volume=u(0.03, 0.14) + (0.1 if style == 4 else 0.0),
            hair_length=u(0.0, 1.0),
            age=age,
            iris_tone=float(rng.beta(1.2, 3.0)),
            clothing=u(0.0, 1.0),
            masculinity=m,
            hair_style=style,
            texture_seed=int(rng.integers(0, 2**31 - 1)),
        )

    def as_dict(self) -> dict:
        return asdict(self)
