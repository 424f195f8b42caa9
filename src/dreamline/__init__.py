"""dreamline: an invoke>-style command line for Stable Diffusion image-to-image work."""

__version__ = "0.2.0"
APP_ID = "dreamline"
