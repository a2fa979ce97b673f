"""Getting edgec into CI and app builds: matrix fan-out, merging per-job outputs, Xcode/Gradle/GitHub Actions glue."""
