"""dreamline: an invoke>-style command line for Stable Diffusion image-to-image work."""

__version__ = "0.3.0"
APP_ID = "dreamline"
