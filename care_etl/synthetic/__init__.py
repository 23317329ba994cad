"""Synthetic sources: the four layouts of source-systems.md, with the ground truth.

Entry point: `care_etl.synthetic.generate.generate(out_dir, people, seed, scans=...)`.
"""
