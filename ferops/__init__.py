"""ferops: an experiment platform for facial-expression research.

Reproduces Breuer & Kimmel, "A Deep Learning Perspective on the Origin of
Facial Expressions" (2017) with every dataset versioned (DVC), every run
tracked (MLflow) and every model promoted on evidence (MLflow registry).
"""

__version__ = "0.1.0"
