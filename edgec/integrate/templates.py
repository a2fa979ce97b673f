"""`edgec integrate xcode|gradle|github-actions`: write the build-system glue that runs edgec in an app's build.

Each writer returns the files it wrote. Paths given by the user are written into the scripts as given
(relative to the Xcode project / Gradle module / repository root), so the files can be committed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from edgec.errors import UsageError
from edgec.graph.shapes import parse_input_shape_flags
from edgec.package.files import write_text_atomic


def _stem(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).stem) or "model"


def _write(path: Path, text: str, force: bool, mode: int | None = None) -> Path:
    if path.exists() and not force and path.read_text() != text:
        raise UsageError(f"{path} exists and differs; pass --force to overwrite it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    if mode is not None:
        path.chmod(mode)
    return path


def _profile_is_file(profile: str) -> bool:
    return profile.endswith((".yaml", ".yml")) or "/" in profile


# ------------------------------------------------------------------------------------------------ Xcode

XCODE_SCRIPT = """#!/bin/sh
# Xcode Run Script build phase, written by `edgec integrate xcode`.
# Compiles {model} to {dest}/{name}.mlpackage with edgec (validated against ONNX Runtime); Xcode then
# compiles the .mlpackage like any other model and generates its Swift class.
# Input/output file lists: {inputs_list} and {outputs_list} -- Xcode skips this phase unless they changed.
set -eu
: "${{SRCROOT:?is set by Xcode: run this script as a Run Script build phase}}"

MODEL="${{SRCROOT}}/{model}"
PROFILE={profile_sh}
DEST="${{SRCROOT}}/{dest}"
WORK="${{DERIVED_FILE_DIR:-${{TMPDIR:-/tmp}}}}/edgec"

# Xcode runs scripts with a minimal PATH: use $EDGEC, else a project virtualenv, else edgec on PATH
if [ -z "${{EDGEC:-}}" ]; then
  if [ -x "${{SRCROOT}}/.venv/bin/edgec" ]; then EDGEC="${{SRCROOT}}/.venv/bin/edgec"; else EDGEC=edgec; fi
fi
command -v "$EDGEC" >/dev/null 2>&1 || {{
  echo "error: edgec not found. Install it into the project (python3 -m venv .venv && .venv/bin/pip install PATH-TO-EDGEC, a checkout or wheel) or set EDGEC to its path." >&2
  exit 1
}}

# EDGEC_FLAGS (e.g. "--no-cache --debug") is split into words on purpose; globbing stays off while it is
set -f
# shellcheck disable=SC2086
"$EDGEC" build "$MODEL" --target ios --profile "$PROFILE"{shape_flags} --out "$WORK" ${{EDGEC_FLAGS:-}}
set +f

# replace the package only after a successful build, so a failed build never leaves half a model behind
mkdir -p "$DEST"
rm -rf "$DEST/{name}.mlpackage.tmp"
cp -R "$WORK/{name}.mlpackage" "$DEST/{name}.mlpackage.tmp"
rm -rf "$DEST/{name}.mlpackage"
mv "$DEST/{name}.mlpackage.tmp" "$DEST/{name}.mlpackage"
echo "note: edgec: $DEST/{name}.mlpackage (report: $WORK/report.md)"
"""


def xcode(model: str, out: Path, profile: str = "iphone-15-pro", dest: str = "Models", force: bool = False,
          input_shapes: list[str] = ()) -> list[Path]:
    """input_shapes: the build's --input-shape flags (NAME=D0,D1,...), written into the phase's edgec command."""
    name = _stem(model)
    parse_input_shape_flags(list(input_shapes))  # a malformed flag fails here, not later inside Xcode
    shape_flags = "".join(f" --input-shape {shlex.quote(s)}" for s in input_shapes)
    out = Path(out)
    inputs = ["$(SRCROOT)/" + model] + (["$(SRCROOT)/" + profile] if _profile_is_file(profile) else [])
    profile_sh = f'"${{SRCROOT}}/{profile}"' if _profile_is_file(profile) else shlex.quote(profile)
    script = XCODE_SCRIPT.format(model=model, dest=dest, name=name, profile_sh=profile_sh, shape_flags=shape_flags,
                                 inputs_list="edgec-inputs.xcfilelist", outputs_list="edgec-outputs.xcfilelist")
    return [
        _write(out / "edgec-build-phase.sh", script, force, 0o755),
        _write(out / "edgec-inputs.xcfilelist", "\n".join(inputs) + "\n", force),
        _write(out / "edgec-outputs.xcfilelist", f"$(SRCROOT)/{dest}/{name}.mlpackage\n", force),
    ]


# ------------------------------------------------------------------------------------------------ Gradle

GRADLE_TASK = """// Written by `edgec integrate gradle`. Paste at the end of app/build.gradle.kts (it uses the Android
// Gradle Plugin's androidComponents API, which a separately applied script cannot see).
// Compiles {model} to {name}.tflite with edgec before preBuild and adds it to the app's assets;
// Gradle re-runs it only when the model, the profile or the edgec command changes.

abstract class EdgecBuild : DefaultTask() {{
    @get:InputFile @get:PathSensitive(PathSensitivity.RELATIVE) abstract val model: RegularFileProperty
    @get:Input abstract val profile: Property<String>
    @get:InputFiles @get:Optional @get:PathSensitive(PathSensitivity.RELATIVE) abstract val profileFile: ConfigurableFileCollection
    @get:Input abstract val edgec: Property<String>
    @get:OutputDirectory abstract val assetsDir: DirectoryProperty
    // fully qualified: a block pasted at the end of a build script cannot add imports
    @get:javax.inject.Inject abstract val execOps: org.gradle.process.ExecOperations
    @get:javax.inject.Inject abstract val fsOps: org.gradle.api.file.FileSystemOperations

    @TaskAction
    fun compile() {{
        val work = temporaryDir
        execOps.exec {{
            commandLine(edgec.get(), "build", model.get().asFile.path, "--target", "android",
                "--profile", profile.get(), "--out", work.path)
        }}
        // only the model goes into the APK; manifest.json and report.md stay in the task's temp folder
        fsOps.sync {{
            from(work) {{ include("*.tflite") }}
            into(assetsDir)
        }}
        logger.lifecycle("edgec: report at ${{work}}/report.md")
    }}
}}

val edgecBuild = tasks.register<EdgecBuild>("edgecBuild") {{
    description = "Compile {model} to TFLite with edgec (validated against ONNX Runtime)."
    group = "build"
    model.set(layout.projectDirectory.file("{model}"))
    profile.set({profile_kt})
{profile_file_line}    edgec.set(providers.gradleProperty("edgec").orElse("edgec"))  // -Pedgec=/path/to/venv/bin/edgec
    assetsDir.set(layout.buildDirectory.dir("generated/edgec/assets"))
}}

androidComponents {{
    onVariants {{ variant ->
        // registers the folder as an assets source and makes every task that reads assets depend on edgecBuild
        variant.sources.assets?.addGeneratedSourceDirectory(edgecBuild, EdgecBuild::assetsDir)
    }}
}}
tasks.named("preBuild") {{ dependsOn(edgecBuild) }}
"""


def gradle(model: str, out: Path, profile: str = "pixel-8", force: bool = False) -> list[Path]:
    name = _stem(model)
    if _profile_is_file(profile):
        profile_kt = f'layout.projectDirectory.file("{profile}").asFile.path'
        profile_file_line = f'    profileFile.from(layout.projectDirectory.file("{profile}"))\n'
    else:
        profile_kt, profile_file_line = f'"{profile}"', ""
    text = GRADLE_TASK.format(model=model, name=name, profile_kt=profile_kt, profile_file_line=profile_file_line)
    return [_write(Path(out) / "edgec.gradle.kts", text, force)]


# ------------------------------------------------------------------------------------------------ GitHub Actions

WORKFLOW = """# Written by `edgec integrate github-actions`: build {model} for every profile in parallel jobs, merge the
# outputs, show report.md as the job summary and upload dist/ (artifacts, manifest.json, report.html, JUnit).
name: edgec

on:
  push:
  pull_request:
  workflow_dispatch:

env:
  MODEL: {model}
  PROFILES: {profiles}

jobs:
  plan:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.matrix.outputs.matrix }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - run: {install}
      - id: matrix
        run: echo "matrix=$(edgec matrix --profiles "$PROFILES" --json)" >> "$GITHUB_OUTPUT"

  build:
    needs: plan
    runs-on: ubuntu-latest
    strategy:
      fail-fast: false
      matrix: ${{{{ fromJson(needs.plan.outputs.matrix) }}}}
    name: build (${{{{ matrix.name }}}})
    steps:
      - uses: actions/checkout@v4
        with:
          lfs: true
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
      - run: {install}
      - uses: actions/cache@v4
        with:
          path: ~/.cache/edgec
          key: edgec-${{{{ matrix.name }}}}-${{{{ hashFiles(env.MODEL) }}}}
          restore-keys: edgec-${{{{ matrix.name }}}}-
      - name: edgec build
        run: >-
          edgec build "$MODEL" --target "${{{{ matrix.target }}}}" --profile "${{{{ matrix.profile }}}}"
          --out "${{{{ matrix.out }}}}" --junit "${{{{ matrix.out }}}}/junit.xml"
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: ${{{{ matrix.out }}}}
          path: ${{{{ matrix.out }}}}
          if-no-files-found: ignore

  report:
    needs: build
    if: always()
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: {install}
      - uses: actions/download-artifact@v4
        with:
          pattern: dist-*
      - name: edgec merge
        run: edgec merge dist-*/ --out dist --junit dist/junit.xml
      - name: report.md as the job summary
        if: always()
        run: test -f dist/report.md && cat dist/report.md >> "$GITHUB_STEP_SUMMARY" || echo "no report" >> "$GITHUB_STEP_SUMMARY"
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: dist
          path: dist
"""


def github_actions(model: str, out: Path, profiles: str = "iphone-15-pro,pixel-8,raspberry-pi-5",
                   install: str = "pip install edgec", force: bool = False) -> list[Path]:
    from edgec.integrate.matrix import matrix

    matrix(profiles=profiles)  # unknown profile names fail here, not in CI
    text = WORKFLOW.format(model=model, profiles=profiles, install=install)
    return [_write(Path(out) / "edgec.yml", text, force)]
