from .unspat import UNSPAT

__all__ = ['UNSPAT']
