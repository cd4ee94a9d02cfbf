"""Fetch the real test videos once into data/test_videos (git-ignored), through the
package managers only: sports2d's demo clip from its PyPI wheel and OpenCV's vtest.avi
from Debian's opencv-doc package. Nothing is committed."""
import os
import os.path as osp
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CACHE = osp.join(ROOT, 'data', 'test_videos')
SPORTS2D = ('sports2d==0.8.34', 'Sports2D/Demo/demo.mp4')
VTEST = './usr/share/doc/opencv-doc/examples/data/vtest.avi'


class FetchError(RuntimeError):
    """The video could not be fetched (no network, no apt, ...)."""


def _run(cmd, cwd):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise FetchError(f'{" ".join(cmd)} failed: {done.stderr.strip()[-300:]}')


def _cached(name, fetch):
    path = osp.join(CACHE, name)
    if osp.isfile(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        fetched = fetch(tmp)
        os.replace(fetched, path)  # atomic: a cached file is always complete
    return path


def sports2d_video():
    """Path of sports2d's demo.mp4 (two people walking, 1768x994, 230 frames)."""
    def fetch(tmp):
        _run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', SPORTS2D[0], '-d',
              tmp], tmp)
        wheel = next(osp.join(tmp, f) for f in os.listdir(tmp) if f.endswith('.whl'))
        with zipfile.ZipFile(wheel) as zf:
            member = next(n for n in zf.namelist() if n.endswith(SPORTS2D[1]))
            out = osp.join(tmp, 'sports2d_demo.mp4')
            with zf.open(member) as src, open(out, 'wb') as dst:
                shutil.copyfileobj(src, dst)
        return out
    return _cached('sports2d_demo.mp4', fetch)


def vtest_video():
    """Path of OpenCV's vtest.avi (pedestrians, 768x576, 795 frames at 10 fps)."""
    def fetch(tmp):
        if shutil.which('apt-get') is None:
            raise FetchError('apt-get is not available to download opencv-doc')
        try:
            _run(['apt-get', 'download', 'opencv-doc'], tmp)
        except FetchError:
            _run(['apt-get', 'update', '-qq'], tmp)
            _run(['apt-get', 'download', 'opencv-doc'], tmp)
        deb = next(osp.join(tmp, f) for f in os.listdir(tmp) if f.endswith('.deb'))
        tar_path = osp.join(tmp, 'data.tar')
        with open(tar_path, 'wb') as out:
            done = subprocess.run(['dpkg-deb', '--fsys-tarfile', deb], stdout=out, timeout=300)
        if done.returncode:
            raise FetchError(f'dpkg-deb could not read {deb}')
        with tarfile.open(tar_path) as tar:
            src = tar.extractfile(VTEST)
            out = osp.join(tmp, 'vtest.avi')
            with open(out, 'wb') as dst:
                shutil.copyfileobj(src, dst)
        return out
    return _cached('vtest.avi', fetch)
