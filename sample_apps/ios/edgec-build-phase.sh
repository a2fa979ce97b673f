#!/bin/sh
# Xcode Run Script build phase, written by `edgec integrate xcode`.
# Compiles Resources/squeezenet.onnx to EdgecDemo/Models/squeezenet.mlpackage with edgec (validated against ONNX Runtime); Xcode then
# compiles the .mlpackage like any other model and generates its Swift class.
# Input/output file lists: edgec-inputs.xcfilelist and edgec-outputs.xcfilelist -- Xcode skips this phase unless they changed.
set -eu
: "${SRCROOT:?is set by Xcode: run this script as a Run Script build phase}"

MODEL="${SRCROOT}/Resources/squeezenet.onnx"
PROFILE=iphone-15-pro
DEST="${SRCROOT}/EdgecDemo/Models"
WORK="${DERIVED_FILE_DIR:-${TMPDIR:-/tmp}}/edgec"

# Xcode runs scripts with a minimal PATH: use $EDGEC, else a project virtualenv, else edgec on PATH
if [ -z "${EDGEC:-}" ]; then
  if [ -x "${SRCROOT}/.venv/bin/edgec" ]; then EDGEC="${SRCROOT}/.venv/bin/edgec"; else EDGEC=edgec; fi
fi
command -v "$EDGEC" >/dev/null 2>&1 || {
  echo "error: edgec not found. Install it into the project (python3 -m venv .venv && .venv/bin/pip install PATH-TO-EDGEC, a checkout or wheel) or set EDGEC to its path." >&2
  exit 1
}

# EDGEC_FLAGS (e.g. "--no-cache --debug") is split into words on purpose; globbing stays off while it is
set -f
# shellcheck disable=SC2086
"$EDGEC" build "$MODEL" --target ios --profile "$PROFILE" --out "$WORK" ${EDGEC_FLAGS:-}
set +f

# replace the package only after a successful build, so a failed build never leaves half a model behind
mkdir -p "$DEST"
rm -rf "$DEST/squeezenet.mlpackage.tmp"
cp -R "$WORK/squeezenet.mlpackage" "$DEST/squeezenet.mlpackage.tmp"
rm -rf "$DEST/squeezenet.mlpackage"
mv "$DEST/squeezenet.mlpackage.tmp" "$DEST/squeezenet.mlpackage"
echo "note: edgec: $DEST/squeezenet.mlpackage (report: $WORK/report.md)"
