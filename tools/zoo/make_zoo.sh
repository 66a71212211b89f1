#!/usr/bin/env bash
# The model zoo (tools/zoo/make_zoo.py): installs Debian's python3-torchvision where it is
# missing, then exports the models into OUT_DIR. Arguments are make_zoo.py's.
#   tools/zoo/make_zoo.sh OUT_DIR [--models a,b] [--size 224] [--images 128]
set -euo pipefail
if ! /usr/bin/python3 -c "import torchvision" 2>/dev/null; then
  echo "make_zoo: installing python3-torchvision"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    python3-torchvision >/dev/null
fi
# torch.onnx's warnings about constant folding and training mode are expected here.
exec /usr/bin/python3 -W ignore "$(dirname "$0")/make_zoo.py" "$@"
