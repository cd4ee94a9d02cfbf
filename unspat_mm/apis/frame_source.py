"""Frames of a video file, a folder of images or a list of arrays, checked as they come."""
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = ['FrameSource', 'IMAGE_EXTENSIONS', 'to_bgr']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
MIN_FRAMES = 2


def to_bgr(frame: np.ndarray, where: str) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> (H, W, 3) uint8 BGR; greyscale
    frames are converted, anything else is an error naming ``where``."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f'{where}: frames must be uint8 images, got dtype {frame.dtype}')
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    raise ValueError(f'{where}: expected an (H, W[, 1|3|4]) image, got shape {frame.shape}')


class FrameSource:
    """Iterate the frames of one input, as (H, W, 3) uint8 **BGR** (OpenCV's order, as
    mmpose's inferencers take arrays). Iterating again reads the input again, so long
    videos are never held in memory.

    Args:
        inputs (str | Sequence[np.ndarray]): a video file, a folder of images (sorted by
            name) or a list of frames (BGR or greyscale uint8 arrays).
        max_frames (int, optional): read at most this many frames.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not a video / no images / fewer than 2 frames / frames of different
            sizes / a video that ends before the frame count in its header.
    """

    def __init__(self, inputs: Union[str, Sequence[np.ndarray]],
                 max_frames: Optional[int] = None):
        if max_frames is not None and int(max_frames) < MIN_FRAMES:
            raise ValueError(f'max_frames must be >= {MIN_FRAMES}, got {max_frames}')
        self.max_frames = None if max_frames is None else int(max_frames)
        self.arrays: Optional[List[np.ndarray]] = None
        self.files: Optional[List[str]] = None
        self.video: Optional[str] = None
        self.fps = 25.
        if isinstance(inputs, (str, os.PathLike)):
            path = os.fspath(inputs)
            if not osp.exists(path):
                raise FileNotFoundError(f'Input {path!r} does not exist (give a video file, a '
                                        'folder of images or a list of frames).')
            if osp.isdir(path):
                self.files = sorted(osp.join(path, f) for f in os.listdir(path)
                                    if f.lower().endswith(IMAGE_EXTENSIONS))
                if not self.files:
                    raise ValueError(f'Folder {path!r} holds no images '
                                     f'({", ".join(IMAGE_EXTENSIONS)}).')
                self.name = osp.basename(osp.normpath(path))
            else:
                self.video = path
                self._probe_video()
                self.name = osp.splitext(osp.basename(path))[0]
        else:
            self.arrays = list(inputs)
            self.name = 'frames'
        self.num_frames, self.frame_shape = self._scan()

    def _probe_video(self) -> None:
        cap = cv2.VideoCapture(self.video)
        try:
            ok = cap.isOpened()
            first = cap.read()[1] if ok else None
            self.declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if ok else 0
            fps = cap.get(cv2.CAP_PROP_FPS) if ok else 0
        finally:
            cap.release()
        if first is None:
            raise ValueError(f'{self.video!r} is not a readable video (OpenCV cannot decode a '
                             'frame from it): give a video file (mp4, avi, ...), a folder of '
                             'images or a list of frames.')
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else 25.

    def _scan(self) -> Tuple[int, Tuple[int, int]]:
        """One pass over the input: count the frames, check sizes and decodability."""
        count, shape = 0, None
        for _, frame in self._raw_frames(check=True):
            if shape is None:
                shape = frame.shape[:2]
            elif frame.shape[:2] != shape:
                raise ValueError(f'{self.name}: frame {count} is {frame.shape[1]}x'
                                 f'{frame.shape[0]}, the first is {shape[1]}x{shape[0]}; all '
                                 'frames of a video must have one size.')
            count += 1
        if self.video is not None and self.max_frames is None and self.declared > 0 \
                and count < self.declared - 1:
            raise ValueError(f'{self.video!r} is truncated or corrupt: its header announces '
                             f'{self.declared} frames but only {count} decode. Re-encode or '
                             're-download it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4).')
        if count < MIN_FRAMES:
            raise ValueError(f'{self.name}: {count} frame(s); UNSPAT is a video model and needs '
                             f'at least {MIN_FRAMES} frames of a person.')
        return count, shape

    def _raw_frames(self, check: bool = False) -> Iterator[Tuple[int, np.ndarray]]:
        limit = self.max_frames
        if self.arrays is not None:
            for i, frame in enumerate(self.arrays[:limit]):
                yield i, to_bgr(frame, f'frame {i}')
        elif self.files is not None:
            for i, path in enumerate(self.files[:limit]):
                frame = cv2.imread(path, cv2.IMREAD_UNCHANGED)
                if frame is None:
                    raise ValueError(f'Cannot read image {path!r} (not an image, or corrupt).')
                if frame.dtype == np.uint16:
                    frame = (frame >> 8).astype(np.uint8)
                yield i, to_bgr(frame, path)
        else:
            cap = cv2.VideoCapture(self.video)
            try:
                i = 0
                while limit is None or i < limit:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    yield i, to_bgr(frame, f'{self.video} frame {i}')
                    i += 1
            finally:
                cap.release()

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        """Yields ``(frame_index, bgr_frame)``; the count is the one scanned at start."""
        count = 0
        for i, frame in self._raw_frames():
            if i >= self.num_frames:
                break
            count += 1
            yield i, frame
        if count != self.num_frames:
            raise RuntimeError(f'{self.name}: {count} frames on this pass, {self.num_frames} '
                               'on the first; the input changed while being read.')
