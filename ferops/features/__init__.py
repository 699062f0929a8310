"""Hand-crafted clip features (LBP-TOP) for the baselines deep models are compared against."""
