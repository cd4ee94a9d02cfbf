"""Fingerprint a folder, to prove a tool left the user's data untouched."""
import hashlib
import os
import os.path as osp
from typing import Dict

__all__ = ['tree_digest']


def tree_digest(root: str) -> Dict[str, str]:
    """{relative path: sha256 of the content} of every file under ``root`` (folders
    appear as ``'<dir>'``), so that any added, removed or changed entry shows."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[osp.relpath(osp.join(folder, name), root)] = '<dir>'
        for name in files:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out
