"""The coverage report: who is covered, by which sources, and what was rejected and why."""
