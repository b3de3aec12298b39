"""Independent references the attack is tested and benchmarked against, never used by it:
scipy's L-BFGS-B per image and flattened (`scipy_baselines`), the exact minimal perturbation of a
linear softmax model (`exact_linear`), and the lock-step c search of earlier versions (`lockstep`)."""
