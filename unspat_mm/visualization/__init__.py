"""Drawing UNSPAT's results: meshes over the video (pyrender offscreen where it works, else
a numpy z-buffer rasteriser) and the demo's overlay."""
from .pyrender_renderer import PyrenderMeshRenderer, RendererUnavailable, load_pyrender
from .rasterizer import rasterize_mesh, shade_faces
from .video_overlay import RENDERERS, VideoOverlay, camera_view, select_renderer, track_color

__all__ = ['rasterize_mesh', 'shade_faces', 'VideoOverlay', 'track_color', 'RENDERERS',
           'camera_view', 'select_renderer', 'PyrenderMeshRenderer', 'RendererUnavailable',
           'load_pyrender']
