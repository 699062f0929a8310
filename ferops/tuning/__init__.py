"""Hyperparameter tuning with Optuna, nested inside the cross-validation.

One study per outer CV fold searches `tune.space` on that fold's training
subjects only (inner subject-independent splits), so the outer test folds that
`ferops cv` reports never influence a choice: the CV of the tuned recipe is a
nested CV. Modules: space (params.yaml ranges -> trial suggestions), objective
(one trial: train + score on inner splits, report per epoch for pruning),
storage (SQLite, journal file or PostgreSQL), study (studies, worker processes,
MLflow runs, plots, best_params.yaml), worker (the worker process entry point).
"""
