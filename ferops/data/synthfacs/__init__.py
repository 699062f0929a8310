"""SynthFACS: a FACS-driven synthetic face generator with exact Action Unit ground truth.

Real expression datasets (CK+, FER2013, CASME II) are licensed and cannot ship
with ferops, so every pipeline defaults to SynthFACS: faces rendered from an
identity (shape, skin, hair, age, sex-typical traits), per-AU intensities (which
move parts and add the furrows, bulges and mouth states FACS describes) and
nuisance (pose, light, camera faults, occluders), shaded as a 3-D head and cut
with the real datasets' eye-aligned crops, with labels, AU intensities and AU
region masks known exactly for every frame.

    from ferops.data.synthfacs import generate, render_face, Identity, Nuisance
    ds = generate("posed", n=700, seed=0)            # CK+-like sequences, 48x48 grey CK+48 crops
    img, masks = render_face(Identity(), {6: 3, 12: 4}, Nuisance(), size=128, channels=3, framing="ck+")
"""

from ferops.data.synthfacs.contact_sheet import contact_sheet
from ferops.data.synthfacs.expression import sided_intensities
from ferops.data.synthfacs.identity import Identity
from ferops.data.synthfacs.nuisance import Nuisance
from ferops.data.synthfacs.presets import PRESETS, Preset, generate
from ferops.data.synthfacs.prototypes import prototype_table, sample_aus
from ferops.data.synthfacs.renderer import render_face

__all__ = [
    "PRESETS", "Identity", "Nuisance", "Preset", "contact_sheet", "generate", "prototype_table",
    "render_face", "sample_aus", "sided_intensities",
]
