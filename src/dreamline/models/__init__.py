"""Model registry and offline loading of Stable Diffusion 1.x files."""
