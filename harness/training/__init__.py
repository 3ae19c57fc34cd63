"""One training lifecycle shared by every trainer: arguments, checks, resume, overfitting."""
