"""Shared machinery of the bilevel imaging benchmark (see docs/maths.md)."""

#: what ``benchopt install`` installs for the objective and the datasets: the
#: runtime pins of requirements.txt (torch and torchvision must be this pair,
#: deepinv imports torchvision at load)
REQUIREMENTS = [
    "pip::torch==2.14.1",
    "pip::torchvision==0.29.1",
    "pip::deepinv==0.5.0",
    "pip::scikit-image==0.26.0",
    "pip::pillow==13.0.0",
]
