#!/usr/bin/env bash
# Make sure the headless browser of the UI tests is here: Debian's chromium,
# driven by PyPI's playwright (requirements.txt) with
# executable_path=/usr/bin/chromium; playwright downloads no browser of its
# own. Installs it when missing and we are root; quiet and instant when it is
# already there. Safe to run again.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$CHROMIUM is missing: install Debian's chromium package (as root: apt-get install chromium)" >&2
  exit 1
fi
echo "installing Debian's chromium (UI tests)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "chromium installed but $CHROMIUM is missing" >&2
  exit 1
fi
