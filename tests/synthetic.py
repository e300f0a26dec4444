"""Many distinct short papers for tests that need volume (crash and burst tests), written here.

Each paper differs in its material, numbers and wording, so each has its own content hash and paper_id.
They are synthetic and make no claim about real materials.
"""

from __future__ import annotations

import random
from pathlib import Path

from processors.local.samples import render_pdf

_MATERIALS = [
    "zinc oxide",
    "titanium dioxide",
    "lithium iron phosphate",
    "graphene oxide",
    "silicon carbide",
    "barium titanate",
    "cobalt ferrite",
    "tin dioxide",
    "bismuth vanadate",
    "copper indium sulfide",
]
_METHODS = ["sol-gel synthesis", "hydrothermal growth", "spray pyrolysis", "ball milling", "atomic layer deposition"]
_PROPERTIES = ["band gap", "specific capacity", "dielectric constant", "coercivity", "photocurrent density"]


def paper_markdown(index: int) -> str:
    rng = random.Random(index)
    material, method, prop = rng.choice(_MATERIALS), rng.choice(_METHODS), rng.choice(_PROPERTIES)
    temp, hours, gain = rng.randrange(300, 1200, 25), rng.randrange(1, 48), rng.randrange(5, 60)
    size = rng.randrange(8, 200)
    return f"""# Effect of annealing temperature on the {prop} of {material} made by {method} (sample set {index})

## Abstract
We prepared {material} by {method} and annealed it at {temp} °C for {hours} hours. Annealing changed the {prop} by
{gain}% compared with the as-prepared material, and the mean crystallite size grew to {size} nm. The change follows
the loss of surface hydroxyl groups and the growth of ordered domains seen by X-ray diffraction.

## Methods
Precursors were mixed in ethanol, dried at 80 °C and annealed in air between 200 °C and {temp} °C. Crystallite
sizes came from the Scherrer equation applied to the strongest diffraction peak. The {prop} was measured on five
samples of each batch and the mean is reported with its standard deviation.

## Results
The as-prepared {material} was partly amorphous. After annealing at {temp} °C the diffraction peaks narrowed and the
crystallite size reached {size} nm. The {prop} rose by {gain}% and the spread between samples fell from 9% to 3%.
Longer annealing than {hours} hours gave no further change.

## Conclusions
Annealing {material} at {temp} °C for {hours} hours after {method} is enough to reach a stable {prop}, {gain}%
above that of the as-prepared material, with crystallites of about {size} nm.
"""


def write_papers(out_dir: Path, count: int, start: int = 0) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        path = out_dir / f"paper_{index:04d}.pdf"
        render_pdf(paper_markdown(index), path)
        paths.append(path)
    return paths


def write_paper_copies(out_dir: Path, count: int, texts: int = 50) -> list[Path]:
    """count distinct PDFs fast: `texts` rendered papers, each copy with its own metadata subject, hence its own
    content hash and paper_id. Each is about 0.5 MiB (the embedded fonts), so 1,000 of them make a heavy burst."""
    import pymupdf

    out_dir.mkdir(parents=True, exist_ok=True)
    bases = []
    for index in range(texts):
        render_pdf(paper_markdown(index), out_dir / "base.pdf")
        bases.append((out_dir / "base.pdf").read_bytes())
    (out_dir / "base.pdf").unlink()
    paths = []
    for index in range(count):
        with pymupdf.open(stream=bases[index % texts], filetype="pdf") as doc:
            doc.set_metadata({**doc.metadata, "subject": f"sciqag-stream test copy {index}"})
            path = out_dir / f"copy_{index:04d}.pdf"
            path.write_bytes(doc.tobytes())
        paths.append(path)
    return paths
