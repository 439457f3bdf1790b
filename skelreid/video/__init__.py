"""From video to 3D skeleton walks: ``skelreid extract`` and ``skelreid identify --video``.

For each video: people are found in each frame (:mod:`.detect`: background subtraction for a
fixed camera, or OpenCV's HOG people detector), each person crop gets one MediaPipe pose
(:mod:`.pose`: 33 landmarks, image and world coordinates), people are associated across frames
into tracks by optimal assignment on box overlap and pose distance (:mod:`.track`), and every
track long enough becomes one walk in the generic format (:mod:`.extract`), which ``train``,
``embed``, ``enrol`` and ``identify`` read with ``--dataset generic``. :mod:`.overlay` draws
the tracks over the video. The joint layout is ``mediapipe_33``
(:data:`skelreid.data.layouts.MEDIAPIPE_33`).

This package sits at the data layer: it imports :mod:`skelreid.data`, :mod:`skelreid.io` and
:mod:`skelreid.errors` only. OpenCV and MediaPipe come with the ``video`` extra
(``pip install "skelreid[video]"``); without them every entry point fails with one line naming it.
"""
from __future__ import annotations

from ..errors import ConfigError

#: How to get the optional dependencies, quoted in the error a missing one gives.
INSTALL_HINT = 'pip install "skelreid[video]"'

#: Video file name endings searched in a folder.
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")


def require_cv2():
    """OpenCV, or one :class:`ConfigError` line naming the extra."""
    try:
        import cv2
    except ImportError:
        raise ConfigError(f"video input needs OpenCV and MediaPipe, which are not installed: {INSTALL_HINT} "
                          "(make setup installs them)") from None
    return cv2


def require_mediapipe():
    """MediaPipe's legacy pose solution (``mediapipe==0.10.21``), or one :class:`ConfigError` line."""
    require_cv2()
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")       # MediaPipe's C++ logging: warnings and up only
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError:
        raise ConfigError(f"video input needs MediaPipe 0.10.21 (its legacy pose solution), which is not "
                          f"installed: {INSTALL_HINT} (make setup installs it)") from None
    return mp_pose
