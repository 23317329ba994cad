#!/usr/bin/env bash
# Install Tesseract OCR from Debian's packages when it is missing (the paper source needs it).
set -euo pipefail
command -v tesseract >/dev/null 2>&1 && exit 0
echo "Tesseract OCR is missing: installing Debian's tesseract-ocr" >&2
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq tesseract-ocr >/dev/null
command -v tesseract >/dev/null 2>&1 || { echo "could not install tesseract-ocr" >&2; exit 1; }
