"""Real aarch64 runtimes (LiteRT, ONNX Runtime) under QEMU user-mode: device-kernel numerics and instruction
counts without a device. setup.py prepares the emulator in the cache, runner.py runs artifacts in it."""
