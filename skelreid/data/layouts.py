"""Named joint layouts.

Every reader returns frames in one of these layouts. Kinect v1 data (BIWI, IAS,
KGBD) is always returned in the Kinect SDK v1 order: KGBD files store their own
order, which :data:`KGBD_TO_KINECT_V1` maps onto it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


@dataclass(frozen=True)
class JointLayout:
    name: str
    joints: tuple[str, ...]
    dims: int = 3
    root: int = 0  # joint used by joint-relative normalisation
    description: str = ""

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)


LAYOUTS: Registry[JointLayout] = Registry("joint layout")


def _add(layout: JointLayout) -> JointLayout:
    LAYOUTS.add(layout.name, layout)
    return layout


KINECT_V1 = _add(JointLayout(
    "kinect_v1",
    ("HipCenter", "Spine", "ShoulderCenter", "Head",
     "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
     "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
     "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
     "HipRight", "KneeRight", "AnkleRight", "FootRight"),
    description="Kinect SDK v1 skeleton, 20 joints, SDK enum order (BIWI, IAS-Lab; KGBD after mapping)",
))

#: Joint names exactly as they appear in KGBD text files, in file order.
KGBD_FILE_JOINTS: tuple[str, ...] = (
    "Head", "Shoulder-Center", "Shoulder-Right", "Shoulder-Left",
    "Elbow-Right", "Elbow-Left", "Wrist-Right", "Wrist-Left",
    "Hand-Right", "Hand-Left", "Spine", "Hip-centro",
    "Hip-Right", "Hip-Left", "Knee-Right", "Knee-Left",
    "Ankle-Right", "Ankle-Left", "Foot-Right", "Foot-Left",
)

_KGBD_NAME_TO_V1 = {
    "Head": "Head", "Shoulder-Center": "ShoulderCenter",
    "Shoulder-Right": "ShoulderRight", "Shoulder-Left": "ShoulderLeft",
    "Elbow-Right": "ElbowRight", "Elbow-Left": "ElbowLeft",
    "Wrist-Right": "WristRight", "Wrist-Left": "WristLeft",
    "Hand-Right": "HandRight", "Hand-Left": "HandLeft",
    "Spine": "Spine", "Hip-centro": "HipCenter",
    "Hip-Right": "HipRight", "Hip-Left": "HipLeft",
    "Knee-Right": "KneeRight", "Knee-Left": "KneeLeft",
    "Ankle-Right": "AnkleRight", "Ankle-Left": "AnkleLeft",
    "Foot-Right": "FootRight", "Foot-Left": "FootLeft",
}

#: ``frames_v1 = frames_kgbd[:, KGBD_TO_KINECT_V1]``: for each Kinect v1 joint,
#: the index of the same joint in a KGBD file frame.
KGBD_TO_KINECT_V1: tuple[int, ...] = tuple(
    KGBD_FILE_JOINTS.index(next(k for k, v in _KGBD_NAME_TO_V1.items() if v == joint))
    for joint in KINECT_V1.joints
)

KINECT_V2 = _add(JointLayout(
    "kinect_v2",
    ("SpineBase", "SpineMid", "Neck", "Head",
     "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
     "ShoulderRight", "ElbowRight", "WristRight", "HandRight",
     "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
     "HipRight", "KneeRight", "AnkleRight", "FootRight",
     "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight"),
    description="Kinect v2 skeleton, 25 joints, SDK order (KS20)",
))

CASIA_B_14 = _add(JointLayout(
    "casia_b_14",
    ("Head", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow",
     "LWrist", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle"),
    description="14-joint 3D skeleton estimated from CASIA-B video (joint 0 = head)",
))

COCO_17 = _add(JointLayout(
    "coco_17",
    ("Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder",
     "LElbow", "RElbow", "LWrist", "RWrist", "LHip", "RHip",
     "LKnee", "RKnee", "LAnkle", "RAnkle"),
    dims=2,
    description="COCO-17 2D keypoints (pixel coordinates)",
))


def generic_layout(num_joints: int, dims: int = 3) -> JointLayout:
    """An anonymous layout for user data with unnamed joints."""
    return JointLayout(
        f"generic_{num_joints}x{dims}",
        tuple(f"joint{i}" for i in range(num_joints)),
        dims=dims,
        description="user data with unnamed joints",
    )


MEDIAPIPE_33 = _add(JointLayout(
    "mediapipe_33",
    ("Nose", "LEyeInner", "LEye", "LEyeOuter", "REyeInner", "REye", "REyeOuter",
     "LEar", "REar", "MouthLeft", "MouthRight",
     "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist",
     "LPinky", "RPinky", "LIndex", "RIndex", "LThumb", "RThumb",
     "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle",
     "LHeel", "RHeel", "LFootIndex", "RFootIndex"),
    root=23,
    description="MediaPipe Pose 33 landmarks (skelreid extract): world coordinates in metres, origin at the "
                "hip centre (midpoint of LHip 23 and RHip 24), x right, y down, z towards the camera",
))

#: The hip centre of :data:`MEDIAPIPE_33`: the midpoint of these two landmarks (the origin of its world frame).
MEDIAPIPE_33_HIPS: tuple[int, int] = (23, 24)

#: Bones of :data:`MEDIAPIPE_33` for drawing (MediaPipe's POSE_CONNECTIONS, face left out but nose-ears kept).
MEDIAPIPE_33_BONES: tuple[tuple[int, int], ...] = (
    (0, 7), (0, 8), (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
    (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27), (26, 28),
    (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)

#: ``casia_b_14`` from ``mediapipe_33``: for each CASIA-B joint, the MediaPipe landmarks it is the mean of.
#: Head = nose; Neck = midpoint of the shoulders (MediaPipe has no neck); the limbs map one to one
#: (MediaPipe's L/R are the person's own left/right, as are CASIA-B's).
MEDIAPIPE_33_TO_CASIA_B_14: tuple[tuple[int, ...], ...] = (
    (0,),        # Head      <- Nose
    (11, 12),    # Neck      <- mean(LShoulder, RShoulder)
    (12,), (14,), (16,),   # RShoulder, RElbow, RWrist
    (11,), (13,), (15,),   # LShoulder, LElbow, LWrist
    (24,), (26,), (28,),   # RHip, RKnee, RAnkle
    (23,), (25,), (27,),   # LHip, LKnee, LAnkle
)


def mediapipe_to_casia_b_14(frames):
    """``[..., 33, D]`` MediaPipe landmarks -> ``[..., 14, D]`` in the :data:`CASIA_B_14` order
    (see :data:`MEDIAPIPE_33_TO_CASIA_B_14`), so the CASIA-B presets run on extracted walks."""
    import numpy as np

    frames = np.asarray(frames)
    if frames.shape[-2] != MEDIAPIPE_33.num_joints:
        raise ValueError(f"expected {MEDIAPIPE_33.num_joints} landmarks, got shape {list(frames.shape)}")
    return np.stack([frames[..., list(src), :].mean(axis=-2) for src in MEDIAPIPE_33_TO_CASIA_B_14],
                    axis=-2).astype(frames.dtype, copy=False)
