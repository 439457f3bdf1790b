"""skelreid: self-supervised person re-identification from 3D skeleton gait (CAGE / AGE)."""
__version__ = "0.1.0"
