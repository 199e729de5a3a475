"""What a run needs from the machine and the process: the device (devices.py), torchrun
(distributed.py), safe checkpoints and their rotating folder (checkpoints.py), every RNG state
(rng.py), stop signals (stopping.py), glibc's allocator settings (hostmem.py) and the commit and
machine a result was measured with (machine.py)."""
