"""Filter <-> Action Unit analysis (the paper's §3.1), one job per module.

activations (F_{l,j}(i), dead filters, top-N), au_correlation (P(j,u), matches, the
within-emotion shuffle), probe (AUROC on AU-balanced faces), attribution (guided
backprop, deconvnet), mask_energy (where a filter looks), filter_images (figures).
ferops.experiments.analysis.stage runs them all as the `analyze` stage.
"""
