"""Where images go, by job: ``files`` (names, the prefix lock, atomic publishing, folder
names), ``composition`` (grids and strips) and ``logs`` (printed lines, invoke_log.txt/.md).

The names below are the output side's public interface for the REPL.
"""

from dreamline.outputs.composition import (
    STRIP_MIN_CELL, grid_shape, make_grid, make_strip, strip_zoom,
)
from dreamline.outputs.files import (
    COUNTER_FILE, GRID_TAG, INTERMEDIATES, LOCK_FILE, OutputDir, OutputError, image_name,
    intermediates_dir, largest_prefix, safe_dir_name, save_grid, save_image, save_step, write_png,
)
from dreamline.outputs.logs import (
    LOG_MD, LOG_TXT, append_logs, format_output_lines, output_entries,
)

__all__ = [
    "COUNTER_FILE", "GRID_TAG", "INTERMEDIATES", "LOCK_FILE", "LOG_MD", "LOG_TXT",
    "STRIP_MIN_CELL", "OutputDir", "OutputError", "append_logs", "format_output_lines",
    "grid_shape", "image_name", "intermediates_dir", "largest_prefix", "make_grid",
    "make_strip", "output_entries", "safe_dir_name", "save_grid", "save_image", "save_step",
    "strip_zoom", "write_png",
]
