"""Device runners for --latency device: ssh, adb, a Mac's CoreML, and the benchmark script they run."""
