"""Standardisation: pure functions that turn raw text into comparable canonical values."""
