"""Serving runtime.Engine with Triton Inference Server: repository writer, server launcher, client."""
