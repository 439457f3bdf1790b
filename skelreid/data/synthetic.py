"""Procedural 3D walkers: the embedded default dataset.

Real gait datasets cannot be redistributed, so ``make demo`` and the fast tests
use walks generated here. They imitate Kinect v1 recordings of people walking:

* 20 joints in :data:`~skelreid.data.layouts.KINECT_V1` order, metres, ~30 fps;
* camera coordinates as the Kinect SDK reports them: right-handed, ``y`` up,
  ``z`` the depth away from the sensor and ``x`` towards the sensor's left
  (i.e. to the right of a person facing the sensor), sensor ~0.7-0.9 m above
  the floor, the person 2-4 m away;
* by default the KGBD set-up: the subject walks a semi-circle around a sensor
  on a spinning dish that follows them with a small, wandering lag (so the
  walker is mostly seen from the side and stays near the image centre);
  ``path="straight"`` is a fixed sensor and a straight walk across its view
  (as long as the number of frames requires: the field of view is not
  enforced).

Each person has a rigid skeleton (segment lengths drawn around adult
anthropometric ratios of the stature) and a personal gait style (cadence,
stride length, arm swing, knee flexion, posture, sway, bounce, pelvis
rotation, toe-out, ...). A walk is forward kinematics of a periodic gait cycle:
hip, knee and ankle angles are smooth periodic functions of the gait phase,
the arms swing opposite to the legs, the pelvis sways, bounces and rotates,
and the stance foot is kept on the floor. Each walk varies slightly (speed
+-5 %, start phase, path radius and position, camera tracking), and the joints
get Gaussian sensor noise plus occasional short jitter bursts on extremities.

Everything is deterministic: :func:`generate_dataset` seeds one generator per
person and one per walk from ``(seed, person, walk)``, so adding persons or
walks never changes the existing ones.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .layouts import KINECT_V1
from .records import Sequence

__all__ = ["PersonParams", "sample_person", "walk_frames", "generate_dataset", "PATHS"]

PATHS = ("semicircle", "straight")

_J = {name: i for i, name in enumerate(KINECT_V1.joints)}
_TWO_PI = 2.0 * np.pi
_DEG = np.pi / 180.0

# Joints that Kinect tracks worst: jitter bursts land on these.
_EXTREMITIES = np.array([_J[n] for n in (
    "HandLeft", "HandRight", "WristLeft", "WristRight",
    "FootLeft", "FootRight", "AnkleLeft", "AnkleRight",
)])


@dataclass
class PersonParams:
    """One synthetic person: skeleton and gait style.

    Lengths are in metres and are Kinect joint-to-joint distances (e.g.
    ``thigh`` is HipLeft-KneeLeft, ``neck`` is ShoulderCenter-Head); angles are
    in degrees. The defaults describe an average adult; :func:`sample_person`
    draws individuals. The walking speed is derived:
    ``speed = stride_length * cadence / 2``.
    """

    height: float = 1.72            # stature (floor to top of the head)
    thigh: float = 0.447            # HipLeft-KneeLeft
    shin: float = 0.378             # KneeLeft-AnkleLeft
    foot: float = 0.095             # AnkleLeft-FootLeft
    ankle_height: float = 0.077     # ankle joint above the floor, foot flat
    hip_width: float = 0.103        # HipLeft-HipRight
    hip_drop: float = 0.052         # HipCenter above the hip joints
    spine: float = 0.086            # HipCenter-Spine
    torso: float = 0.413            # Spine-ShoulderCenter
    neck: float = 0.189             # ShoulderCenter-Head
    shoulder_width: float = 0.344   # ShoulderLeft-ShoulderRight
    shoulder_drop: float = 0.069    # shoulders below ShoulderCenter
    upper_arm: float = 0.275        # ShoulderLeft-ElbowLeft
    forearm: float = 0.249          # ElbowLeft-WristLeft
    hand: float = 0.086             # WristLeft-HandLeft
    cadence: float = 1.85           # steps per second (a stride is two steps)
    stride_length: float = 1.31     # metres per stride (two steps)
    arm_swing: float = 20.0         # shoulder flexion amplitude, degrees
    arm_abduction: float = 8.0      # arms held away from the body, degrees
    elbow_flexion: float = 18.0     # mean elbow flexion, degrees
    knee_flexion: float = 60.0      # peak swing-phase knee flexion, degrees
    torso_lean: float = 4.0         # forward lean of the trunk, degrees
    head_forward: float = 8.0       # extra forward tilt of the neck, degrees
    lateral_sway: float = 0.025     # side-to-side pelvis amplitude, metres
    bounce: float = 0.01            # extra vertical pelvis motion, metres
    pelvis_rotation: float = 5.0    # pelvis yaw amplitude, degrees
    toe_out: float = 7.0            # foot progression angle, degrees

    @property
    def speed(self) -> float:
        """Walking speed in m/s."""
        return self.stride_length * self.cadence / 2.0

    def as_dict(self) -> dict[str, float]:
        """All parameters (and the derived speed) as plain floats."""
        out = {f.name: float(getattr(self, f.name)) for f in fields(self)}
        out["speed"] = float(self.speed)
        return out


# Segment lengths as fractions of stature (means) and their per-person spread
# (relative standard deviation).
_RATIOS: dict[str, tuple[float, float]] = {
    "thigh": (0.260, 0.04),
    "shin": (0.220, 0.04),
    "foot": (0.055, 0.06),
    "ankle_height": (0.045, 0.06),
    "hip_width": (0.060, 0.08),
    "hip_drop": (0.030, 0.08),
    "spine": (0.050, 0.06),
    "torso": (0.240, 0.04),
    "neck": (0.110, 0.05),
    "shoulder_width": (0.200, 0.06),
    "shoulder_drop": (0.040, 0.08),
    "upper_arm": (0.160, 0.04),
    "forearm": (0.145, 0.04),
    "hand": (0.050, 0.06),
}


def _clipped_normal(rng: np.random.Generator, mean: float, std: float,
                    lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, std), lo, hi))


def sample_person(rng: np.random.Generator) -> PersonParams:
    """Draw one person from plausible adult ranges."""
    height = _clipped_normal(rng, 1.72, 0.09, 1.50, 2.00)
    seg = {}
    for name, (ratio, rel_std) in _RATIOS.items():
        factor = np.clip(rng.normal(1.0, rel_std), 1.0 - 3 * rel_std, 1.0 + 3 * rel_std)
        seg[name] = float(height * ratio * factor)
    return PersonParams(
        height=height,
        **seg,
        cadence=_clipped_normal(rng, 1.85, 0.12, 1.6, 2.1),
        stride_length=height * _clipped_normal(rng, 0.76, 0.05, 0.60, 0.92),
        arm_swing=_clipped_normal(rng, 20.0, 6.0, 5.0, 40.0),
        arm_abduction=_clipped_normal(rng, 8.0, 3.0, 2.0, 16.0),
        elbow_flexion=_clipped_normal(rng, 18.0, 6.0, 5.0, 35.0),
        knee_flexion=_clipped_normal(rng, 60.0, 5.0, 45.0, 72.0),
        torso_lean=_clipped_normal(rng, 4.0, 3.0, -3.0, 12.0),
        head_forward=_clipped_normal(rng, 8.0, 5.0, -5.0, 20.0),
        lateral_sway=_clipped_normal(rng, 0.025, 0.008, 0.005, 0.05),
        bounce=_clipped_normal(rng, 0.01, 0.005, 0.0, 0.025),
        pelvis_rotation=_clipped_normal(rng, 5.0, 2.0, 1.0, 10.0),
        toe_out=_clipped_normal(rng, 7.0, 4.0, -3.0, 18.0),
    )


def _bump(phase: np.ndarray, centre: float, concentration: float) -> np.ndarray:
    """A smooth periodic bump (von Mises shape, peak 1 at ``centre``)."""
    return np.exp(concentration * (np.cos(_TWO_PI * (phase - centre)) - 1.0))


def _wander(rng: np.random.Generator, t: np.ndarray, std: float,
            fmin: float = 0.05, fmax: float = 0.4, n: int = 3) -> np.ndarray:
    """A smooth random signal: a few slow sinusoids, total std ~ ``std``."""
    freq = rng.uniform(fmin, fmax, n)
    phase = rng.uniform(0.0, _TWO_PI, n)
    amp = std * np.sqrt(2.0 / n)
    return amp * np.sin(_TWO_PI * freq[None, :] * t[:, None] + phase[None, :]).sum(axis=1)


def _leg(p: PersonParams, phase: np.ndarray, side: float, hip_amp: float,
         sway: np.ndarray):
    """Sagittal forward kinematics of one leg relative to its hip joint.

    Returns knee, ankle and foot offsets ``[T, 3]`` in body axes
    (lateral-left, up, forward) and the height of the lowest sole point.
    """
    ph = _TWO_PI * phase
    knee_amp = p.knee_flexion * _DEG
    hip = 0.04 + hip_amp * np.cos(ph)                      # thigh angle from vertical
    knee = (4.0 * _DEG + 0.3 * knee_amp * _bump(phase, 0.13, 7.0)
            + knee_amp * _bump(phase, 0.72, 4.0))           # knee flexion
    shank = hip - knee                                      # shank angle from vertical
    ankle = _DEG * (6.0 * _bump(phase, 0.45, 6.0) - 22.0 * _bump(phase, 0.64, 12.0))
    pitch = shank + ankle                                   # sole pitch, toes up > 0

    knee_f, knee_u = p.thigh * np.sin(hip), -p.thigh * np.cos(hip)
    ank_f = knee_f + p.shin * np.sin(shank)
    ank_u = knee_u - p.shin * np.cos(shank)

    # Foot joint (Kinect "Foot", near the ball of the foot) in sole axes.
    drop = min(0.8 * p.ankle_height, 0.9 * p.foot)
    fwd = np.sqrt(p.foot ** 2 - drop ** 2)
    cp, sp = np.cos(pitch), np.sin(pitch)
    foot_f = fwd * cp + drop * sp
    foot_u = fwd * sp - drop * cp
    # Sole contact points: heel and toe tip, ankle_height below the ankle.
    heel_u = -0.05 * sp - p.ankle_height * cp
    toe_u = (fwd + 0.06) * sp - p.ankle_height * cp
    sole_u = ank_u + np.minimum(heel_u, toe_u)

    toe = p.toe_out * _DEG
    foot_l = side * foot_f * np.sin(toe)
    foot_f = foot_f * np.cos(toe)

    # Frontal-plane tilt keeps the feet under the hips while the pelvis sways.
    zeta = np.arcsin(np.clip(-sway / (p.thigh + p.shin), -0.3, 0.3))
    cz, sz = np.cos(zeta), np.sin(zeta)

    def frontal(lat, up, f):
        return np.stack([lat * cz - up * sz, lat * sz + up * cz, np.broadcast_to(f, up.shape)], axis=-1)

    zero = np.zeros_like(phase)
    knee_v = frontal(zero, knee_u, knee_f)
    ankle_v = frontal(zero, ank_u, ank_f)
    foot_v = frontal(foot_l, ank_u + foot_u, ank_f + foot_f)
    return knee_v, ankle_v, foot_v, sole_u * cz


def _arm(p: PersonParams, phase: np.ndarray, side: float, swing: float):
    """Elbow, wrist and hand offsets ``[T, 3]`` from the shoulder (body axes)."""
    amp = swing * _DEG
    flex = amp * np.cos(_TWO_PI * phase)                    # shoulder flexion
    elbow = p.elbow_flexion * _DEG + 0.4 * (flex + amp)     # bends more when forward
    abd = p.arm_abduction * _DEG
    sa, ca = np.sin(abd), np.cos(abd)

    def direction(angle):
        return np.stack([np.full_like(angle, side * sa), -ca * np.cos(angle), ca * np.sin(angle)], axis=-1)

    e = p.upper_arm * direction(flex)
    w = e + p.forearm * direction(flex + elbow)
    h = w + p.hand * direction(flex + elbow + 10.0 * _DEG)
    return e, w, h


def _simulate(p: PersonParams, num_frames: int, rng: np.random.Generator, fps: float,
              noise: float, path: str, start_phase: float | None,
              jitter_rate: float) -> tuple[np.ndarray, dict[str, float]]:
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; valid: {', '.join(PATHS)}")
    T = int(num_frames)
    if T < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")

    # --- per-walk variation --------------------------------------------------
    speed_factor = float(np.clip(rng.normal(1.0, 0.05), 0.9, 1.1))
    cadence = p.cadence * np.sqrt(speed_factor)
    stride = p.stride_length * np.sqrt(speed_factor)
    speed = stride * cadence / 2.0
    phase0 = float(rng.uniform(0.0, 1.0)) if start_phase is None else float(start_phase)
    arm_swing = p.arm_swing * float(np.clip(rng.normal(1.0, 0.05), 0.85, 1.15))
    direction = 1.0 if rng.uniform() < 0.5 else -1.0
    sensor_height = float(rng.uniform(0.7, 0.9))
    tilt = float(rng.normal(0.0, 1.5)) * _DEG

    t = np.arange(T, dtype=np.float64) / fps
    phase = phase0 + 0.5 * cadence * t            # stride phase of the left leg
    ph = _TWO_PI * phase
    dist = speed * t                              # distance walked

    # --- body-frame kinematics (lateral-left, up, forward) -------------------
    sway = p.lateral_sway * np.sin(ph)            # towards the stance leg
    pel = p.pelvis_rotation * _DEG * np.cos(ph)   # left hip forward with the left leg
    sho = -0.8 * pel                              # trunk counter-rotation
    leg_len = p.thigh + p.shin
    hip_amp = float(np.arcsin(np.clip(stride / (4.0 * leg_len * np.cos(0.04)), 0.05, 0.7)))

    kL, aL, fL, soleL = _leg(p, phase, 1.0, hip_amp, sway)
    kR, aR, fR, soleR = _leg(p, phase + 0.5, -1.0, hip_amp, sway)
    hip_y = -np.minimum(soleL, soleR) + p.bounce * 0.5 * (1.0 - np.cos(2.0 * ph))

    body = np.empty((T, 20, 3))
    half_hw = 0.5 * p.hip_width
    body[:, _J["HipLeft"]] = np.stack([sway + half_hw * np.cos(pel), hip_y, half_hw * np.sin(pel)], -1)
    body[:, _J["HipRight"]] = np.stack([sway - half_hw * np.cos(pel), hip_y, -half_hw * np.sin(pel)], -1)
    for hip, knee, ank, foot, (kv, av, fv) in (
        ("HipLeft", "KneeLeft", "AnkleLeft", "FootLeft", (kL, aL, fL)),
        ("HipRight", "KneeRight", "AnkleRight", "FootRight", (kR, aR, fR)),
    ):
        base = body[:, _J[hip]]
        body[:, _J[knee]] = base + kv
        body[:, _J[ank]] = base + av
        body[:, _J[foot]] = base + fv

    hip_c = np.stack([sway, hip_y + p.hip_drop, np.zeros(T)], -1)
    lean = p.torso_lean * _DEG + 1.5 * _DEG * np.cos(2.0 * ph)
    trunk = np.stack([np.zeros(T), np.cos(lean), np.sin(lean)], -1)
    head_ang = lean + p.head_forward * _DEG
    head_dir = np.stack([np.zeros(T), np.cos(head_ang), np.sin(head_ang)], -1)
    body[:, _J["HipCenter"]] = hip_c
    body[:, _J["Spine"]] = hip_c + p.spine * trunk
    sc = body[:, _J["Spine"]] + p.torso * trunk
    body[:, _J["ShoulderCenter"]] = sc
    body[:, _J["Head"]] = sc + p.neck * head_dir

    half_sw = 0.5 * p.shoulder_width
    for side, name, arm_phase in ((1.0, "Left", phase + 0.5), (-1.0, "Right", phase)):
        sh = sc + np.stack([side * half_sw * np.cos(sho), np.full(T, -p.shoulder_drop),
                            side * half_sw * np.sin(sho)], -1)
        e, w, h = _arm(p, arm_phase, side, arm_swing)
        body[:, _J["Shoulder" + name]] = sh
        body[:, _J["Elbow" + name]] = sh + e
        body[:, _J["Wrist" + name]] = sh + w
        body[:, _J["Hand" + name]] = sh + h

    # --- path in the world (sensor at the origin, floor y = 0) ---------------
    if path == "semicircle":
        radius = float(rng.uniform(2.0, 2.8))
        centre = np.array([rng.normal(0.0, 0.1), rng.normal(0.1, 0.1)])
        drift = float(rng.normal(0.0, 0.1))                  # slight spiralling
        span = speed * (T - 1) / fps / radius
        alpha = float(rng.normal(0.0, 0.15)) + direction * (dist / radius - 0.5 * span)
        rad = radius + drift * (t / max(t[-1], 1e-9) - 0.5)
        root_x = centre[0] + rad * np.sin(alpha)
        root_z = centre[1] + rad * np.cos(alpha)
        heading = np.arctan2(direction * np.cos(alpha), -direction * np.sin(alpha))
        # The sensor on its dish follows the walker with a wandering lag.
        lag = float(rng.uniform(0.0, 0.12))
        yaw = np.arctan2(root_x, root_z) - direction * lag + _wander(rng, t, 0.06)
        distance = radius
    else:
        depth = float(rng.uniform(2.2, 3.5))
        h0 = direction * np.pi / 2 + float(rng.normal(0.0, 8.0)) * _DEG
        mid = np.array([rng.normal(0.0, 0.15), depth])
        s = dist - 0.5 * speed * (T - 1) / fps
        root_x = mid[0] + s * np.sin(h0)
        root_z = mid[1] + s * np.cos(h0)
        heading = np.full(T, h0)
        yaw = np.full(T, float(rng.normal(0.0, 2.0)) * _DEG)
        distance = depth
    heading = heading + _wander(rng, t, 2.0 * _DEG, 0.1, 0.6)

    # Body axes -> world: forward = (sin h, 0, cos h), left = up x forward.
    sh_, ch_ = np.sin(heading)[:, None], np.cos(heading)[:, None]
    lat, up, fw = body[..., 0], body[..., 1], body[..., 2]
    wx = root_x[:, None] + lat * ch_ + fw * sh_
    wz = root_z[:, None] - lat * sh_ + fw * ch_

    # World -> camera: yaw about the vertical, then a small downward tilt.
    sy, cy = np.sin(yaw)[:, None], np.cos(yaw)[:, None]
    cx = cy * wx - sy * wz
    cz = sy * wx + cy * wz
    cyy = up - sensor_height
    st, ct = np.sin(tilt), np.cos(tilt)
    frames = np.stack([cx, ct * cyy + st * cz, -st * cyy + ct * cz], axis=-1)

    # --- sensor noise --------------------------------------------------------
    if noise > 0:
        frames += rng.normal(0.0, noise, frames.shape)
        n_bursts = int(rng.poisson(jitter_rate * T))
        for _ in range(n_bursts):
            j = int(rng.choice(_EXTREMITIES))
            start = int(rng.integers(0, T))
            length = int(rng.integers(1, 5))
            frames[start:start + length, j] += rng.normal(0.0, 4.0 * noise, 3)

    info = {
        "walk_speed_factor": speed_factor,
        "walk_cadence": float(cadence),
        "walk_stride_length": float(stride),
        "walk_speed": float(speed),
        "walk_arm_swing": float(arm_swing),
        "walk_start_phase": phase0,
        "walk_distance": float(distance),
        "walk_direction": direction,
        "sensor_height": sensor_height,
        "fps": float(fps),
    }
    return frames.astype(np.float32), info


def walk_frames(params: PersonParams, num_frames: int, rng: np.random.Generator, fps: float = 30.0,
                noise: float = 0.01, path: str = "semicircle", start_phase: float | None = None,
                jitter_rate: float = 0.02) -> np.ndarray:
    """One walk of ``params`` as ``[num_frames, 20, 3]`` float32 Kinect v1 joints.

    ``rng`` draws the per-walk variation (speed +-5 %, start phase unless
    ``start_phase`` is given, path placement, sensor tracking) and the noise:
    Gaussian with std ``noise`` metres on every coordinate, plus on average
    ``jitter_rate`` bursts per frame of 1-4 frames displacing one hand, wrist,
    foot or ankle by ~4 x ``noise``. ``noise=0`` gives exact rigid skeletons.
    """
    frames, _ = _simulate(params, num_frames, rng, fps, noise, path, start_phase, jitter_rate)
    return frames


def _rng(seed: int, person: int, walk: int) -> np.random.Generator:
    # walk 0 is the person's own stream; walks start at 1.
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED, person, walk]))


def generate_dataset(num_persons: int = 10, walks_per_person: int = 4,
                     frames: tuple[int, int] | int = (120, 200), seed: int = 0,
                     noise: float = 0.01, fps: float = 30.0,
                     path: str = "semicircle") -> list[Sequence]:
    """``num_persons`` x ``walks_per_person`` synthetic Kinect v1 walks.

    Persons are ``P001``, ``P002``, ...; walks ``"1"``..``"K"``. Each walk has a
    length drawn uniformly from ``frames = (min, max)`` (inclusive; an int
    fixes it). ``meta`` holds the person's parameters (:meth:`PersonParams.as_dict`)
    and the walk's own values (``walk_cadence``, ``walk_speed``, ...), all
    plain floats; ``condition`` is the path. Person ``k`` and its walks depend
    only on ``(seed, k, walk)``, so the output is bit-identical across calls
    and a larger ``num_persons`` only appends persons.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    lo, hi = (int(frames), int(frames)) if np.isscalar(frames) else (int(frames[0]), int(frames[1]))
    if not 1 <= lo <= hi:
        raise ValueError(f"frames must be 1 <= min <= max, got {frames}")
    out: list[Sequence] = []
    for k in range(1, num_persons + 1):
        person = sample_person(_rng(seed, k, 0))
        pdict = person.as_dict()
        for w in range(1, walks_per_person + 1):
            rng = _rng(seed, k, w)
            T = int(rng.integers(lo, hi + 1))
            arr, info = _simulate(person, T, rng, fps, noise, path, None, 0.02)
            out.append(Sequence(
                person=f"P{k:03d}",
                walk=str(w),
                frames=arr,
                layout=KINECT_V1.name,
                condition=path,
                source=f"synthetic:seed={seed}",
                meta={**pdict, **info},
            ))
    return out
