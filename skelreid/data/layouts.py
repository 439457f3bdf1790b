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
