"""Media I/O at the edges: everything that touches ffmpeg, sound files or detectors."""
