"""Dagster assets: a few lines each, calling the plain functions of each stage."""
