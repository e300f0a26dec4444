"""`python -m processors.local.samples --out DIR`: write the bundled sample papers as PDFs (used by `make demo`)."""

import argparse
from pathlib import Path

from . import write_sample_pdfs

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    for path in write_sample_pdfs(parser.parse_args().out):
        print(path)
