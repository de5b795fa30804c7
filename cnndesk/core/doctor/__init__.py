"""The dataset check: wrong labels, duplicates and leaks, outliers, unreadable files, imbalance."""
