"""One module per place a model can run (host_ort, host_litert, mil_interp, ...)."""
