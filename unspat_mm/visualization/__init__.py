"""Drawing UNSPAT's results: a numpy z-buffer mesh rasteriser and the demo's overlay."""
from .rasterizer import rasterize_mesh, shade_faces
from .video_overlay import VideoOverlay, track_color

__all__ = ['rasterize_mesh', 'shade_faces', 'VideoOverlay', 'track_color']
