"""The procedural walker dataset: determinism, shapes, anatomy, gait, identity."""
from __future__ import annotations


import numpy as np
import pytest

from skelreid.data.layouts import KINECT_V1
from skelreid.data.records import Sequence
from skelreid.data.synthetic import (
    PersonParams,
    generate_dataset,
    sample_person,
    walk_frames,
)

J = {name: i for i, name in enumerate(KINECT_V1.joints)}

BONES = {
    "thigh": ("HipLeft", "KneeLeft"),
    "shin": ("KneeLeft", "AnkleLeft"),
    "upper_arm": ("ShoulderLeft", "ElbowLeft"),
    "forearm": ("ElbowLeft", "WristLeft"),
    "torso": ("Spine", "ShoulderCenter"),
    "neck": ("ShoulderCenter", "Head"),
    "shoulder_width": ("ShoulderLeft", "ShoulderRight"),
    "hip_width": ("HipLeft", "HipRight"),
    "spine": ("HipCenter", "Spine"),
    "foot": ("AnkleLeft", "FootLeft"),
    "hand": ("WristLeft", "HandLeft"),
}
FEET = [J[n] for n in ("AnkleLeft", "FootLeft", "AnkleRight", "FootRight")]


def bone(frames: np.ndarray, name: str) -> np.ndarray:
    a, b = BONES[name]
    return np.linalg.norm(frames[:, J[a]].astype(np.float64) - frames[:, J[b]], axis=1)


def bone_vector(frames: np.ndarray) -> np.ndarray:
    return np.array([bone(frames, name).mean() for name in BONES])


@pytest.fixture(scope="module")
def ten() -> list[Sequence]:
    return generate_dataset(num_persons=10, walks_per_person=4, seed=0)


def by_person(seqs: list[Sequence]) -> dict[str, list[Sequence]]:
    out: dict[str, list[Sequence]] = {}
    for s in seqs:
        out.setdefault(s.person, []).append(s)
    return out


# --- determinism --------------------------------------------------------------

def test_same_seed_is_bit_identical_and_other_seed_differs():
    a = generate_dataset(3, 2, seed=7)
    b = generate_dataset(3, 2, seed=7)
    c = generate_dataset(3, 2, seed=8)
    assert [s.walk_id for s in a] == [s.walk_id for s in b]
    for x, y in zip(a, b):
        assert x.frames.tobytes() == y.frames.tobytes()
        assert x.meta == y.meta
    for x, z in zip(a, c):
        assert x.frames.shape != z.frames.shape or not np.array_equal(x.frames, z.frames)
        assert x.meta["thigh"] != z.meta["thigh"]


def test_persons_and_walks_do_not_depend_on_dataset_size():
    small = generate_dataset(num_persons=5, walks_per_person=2, seed=3)
    large = generate_dataset(num_persons=10, walks_per_person=4, seed=3)
    index = {s.walk_id: s for s in large}
    assert len(large) == 40
    for s in small:
        other = index[s.walk_id]
        assert np.array_equal(s.frames, other.frames)
        assert s.meta == other.meta


# --- records ------------------------------------------------------------------

def test_records_shapes_ids_and_meta(ten):
    assert len(ten) == 40
    assert sorted({s.person for s in ten}) == [f"P{k:03d}" for k in range(1, 11)]
    for s in ten:
        assert s.walk in {"1", "2", "3", "4"}
        assert s.layout == "kinect_v1"
        assert s.source == "synthetic:seed=0"
        assert s.frames.dtype == np.float32
        assert s.frames.shape[1:] == (20, 3)
        assert 120 <= s.num_frames <= 200
        assert np.isfinite(s.frames).all()
        assert all(type(v) is float for v in s.meta.values())
        assert s.meta["speed"] == pytest.approx(s.meta["stride_length"] * s.meta["cadence"] / 2)
    lengths = {s.num_frames for s in ten}
    assert len(lengths) > 5  # lengths are drawn, not fixed

    fixed = generate_dataset(2, 2, frames=64, seed=1)
    assert [s.num_frames for s in fixed] == [64] * 4


def test_walk_frames_api_and_paths():
    rng = np.random.default_rng(0)
    p = sample_person(rng)
    for path in ("semicircle", "straight"):
        f = walk_frames(p, 90, rng, path=path)
        assert f.shape == (90, 20, 3) and f.dtype == np.float32
        assert np.isfinite(f).all()
    f = walk_frames(PersonParams(), 10, np.random.default_rng(0), start_phase=0.25, noise=0.0)
    assert f.shape == (10, 20, 3)
    with pytest.raises(ValueError):
        walk_frames(p, 10, rng, path="zigzag")


def test_generation_at_benchmark_size():
    # The speed of this call is measured by benchmarks/synthetic_generation.py, not asserted here.
    seqs = generate_dataset(num_persons=20, walks_per_person=5, frames=(200, 200))
    assert len(seqs) == 100
    assert {s.frames.shape for s in seqs} == {(200, 20, 3)}
    assert len({s.walk_id for s in seqs}) == 100 and len({s.person for s in seqs}) == 20


# --- anatomy --------------------------------------------------------------------

def test_noise_free_skeleton_is_rigid_and_matches_parameters():
    rng = np.random.default_rng(5)
    p = sample_person(rng)
    f = walk_frames(p, 150, rng, noise=0.0)
    for name in BONES:
        lengths = bone(f, name)
        assert lengths.std() < 1e-5, name
        # Every bone in BONES is named after the parameter that sets its length.
        assert lengths.mean() == pytest.approx(getattr(p, name), abs=2e-4), name


def test_bone_lengths_constant_per_person_and_differ_between_persons(ten):
    noise = 0.01
    persons = by_person(ten)
    centroids = []
    for walks in persons.values():
        vectors = []
        for s in walks:
            for name in BONES:
                # Noise of ~noise per coordinate moves a bone's length by ~1.4 noise.
                assert bone(s.frames, name).std() < 2.5 * noise, (s.walk_id, name)
            vectors.append(bone_vector(s.frames))
        vectors = np.array(vectors)
        # Same person: the same skeleton in every walk (to a few millimetres).
        assert np.abs(vectors - vectors.mean(0)).max() < 0.006
        # ... and the one its parameters describe.
        assert vectors.mean(0)[0] == pytest.approx(walks[0].meta["thigh"], abs=0.006)
        centroids.append(vectors.mean(0))
    centroids = np.array(centroids)
    gaps = [np.abs(centroids[i] - centroids[j]).max()
            for i in range(len(centroids)) for j in range(i)]
    assert min(gaps) > 0.012  # every two persons differ by > 1.2 cm in some bone


def test_upright_posture_feet_on_floor_and_camera_range(ten):
    for s in ten:
        f = s.frames
        assert (f[:, J["Head"], 1] > f[:, J["HipCenter"], 1] + 0.4).all()
        assert (f[:, J["ShoulderCenter"], 1] > f[:, J["Spine"], 1]).all()
        assert (f[:, J["KneeLeft"], 1] < f[:, J["HipLeft"], 1]).mean() > 0.99
        lowest = np.argmin(f[:, :, 1], axis=1)
        assert np.isin(lowest, FEET).mean() > 0.98
        # The lowest foot joint stays near the floor, a sensor height below 0.
        floor = f[:, FEET, 1].min(axis=1)
        assert np.ptp(np.percentile(floor, [5, 95])) < 0.08
        assert -1.1 < np.median(floor) < -0.5
        # Head to floor ~ stature minus the top of the head.
        standing = np.median(f[:, J["Head"], 1] - floor)
        assert 0.85 * s.meta["height"] < standing < 0.99 * s.meta["height"]
        # A person a few metres in front of the sensor.
        assert 1.5 < np.median(f[:, 0, 2]) < 4.5
        assert np.abs(f[:, 0, 0]).max() < 2.0
        # Walking: the hip centre moves ~ walking speed / fps per frame in camera space.
        assert np.linalg.norm(np.diff(f[:, 0], axis=0), axis=1).mean() > 0.01


# --- gait -------------------------------------------------------------------------

def _spectrum_peak(signal: np.ndarray, fps: float, fmin: float, fmax: float) -> float:
    x = signal - signal.mean()
    x = x * np.hanning(len(x))
    n = 1 << 16
    power = np.abs(np.fft.rfft(x, n)) ** 2
    freq = np.fft.rfftfreq(n, 1.0 / fps)
    band = (freq >= fmin) & (freq <= fmax)
    return float(freq[band][np.argmax(power[band])])


def _forward_axis(f: np.ndarray) -> np.ndarray:
    """Per-frame horizontal walking direction from the hip and shoulder axes."""
    lateral = (f[:, J["HipLeft"]] - f[:, J["HipRight"]]) + (f[:, J["ShoulderLeft"]] - f[:, J["ShoulderRight"]])
    lateral[:, 1] = 0.0
    kernel = np.ones(9) / 9
    lateral = np.stack([np.convolve(lateral[:, i], kernel, mode="same") for i in range(3)], -1)
    lateral /= np.linalg.norm(lateral, axis=1, keepdims=True)
    # Right-handed camera frame, y up: forward = left x up.
    return np.cross(lateral, np.array([0.0, 1.0, 0.0]))


def test_gait_periodicity_strides_steps_and_arm_swing():
    seqs = generate_dataset(num_persons=4, walks_per_person=1, frames=900, seed=11)
    for s in seqs:
        f = s.frames.astype(np.float64)
        fps = s.meta["fps"]
        steps_per_s = s.meta["walk_cadence"]
        fwd = _forward_axis(f)
        # Left ankle minus right ankle, along the walking direction: one cycle per
        # stride (= two steps), so it oscillates at cadence / 2.
        ankle_gap = np.einsum("ti,ti->t", f[:, J["AnkleLeft"]] - f[:, J["AnkleRight"]], fwd)
        assert np.ptp(np.percentile(ankle_gap, [5, 95])) > 0.5  # feet pass each other
        stride_f = _spectrum_peak(ankle_gap, fps, 0.3, 5.0)
        assert stride_f == pytest.approx(steps_per_s / 2, rel=0.03), s.walk_id
        assert stride_f == pytest.approx(s.meta["cadence"] / 2, rel=0.08)
        # The pelvis rises at every step: its height oscillates at the cadence.
        hip = f[:, J["HipCenter"], 1] - f[:, FEET, 1].min(axis=1)
        assert _spectrum_peak(hip, fps, 0.5, 5.0) == pytest.approx(steps_per_s, rel=0.03)
        # Arms swing opposite to the legs on the same side.
        hc = f[:, J["HipCenter"]]
        wrist = np.einsum("ti,ti->t", f[:, J["WristLeft"]] - hc, fwd)
        ankle = np.einsum("ti,ti->t", f[:, J["AnkleLeft"]] - hc, fwd)
        assert np.corrcoef(wrist, ankle)[0, 1] < -0.5


def test_gait_style_differs_between_persons():
    people = [sample_person(np.random.default_rng(i)) for i in range(30)]
    for name, lo, hi in (("cadence", 1.6, 2.1), ("height", 1.5, 2.0)):
        values = np.array([getattr(p, name) for p in people])
        assert values.min() >= lo and values.max() <= hi
        assert values.std() > 0.03 * values.mean()
    speeds = np.array([p.speed for p in people])
    assert 0.8 < speeds.mean() < 1.6


# --- identity ---------------------------------------------------------------------

def _features(f: np.ndarray) -> np.ndarray:
    floor = f[:, FEET, 1].min(axis=1)
    height = np.median(f[:, J["Head"], 1] - floor)
    return np.append(bone_vector(f), height)


def _nearest_centroid(train_x, train_y, test_x) -> np.ndarray:
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-9
    a, b = (train_x - mu) / sd, (test_x - mu) / sd
    labels = sorted(set(train_y))
    centroids = np.array([a[np.array(train_y) == c].mean(0) for c in labels])
    d = ((b[:, None, :] - centroids[None]) ** 2).sum(-1)
    return np.array(labels)[d.argmin(1)]


def test_identities_are_separable_by_simple_statistics(ten):
    train_x, train_y, test_x, test_y = [], [], [], []
    for s in ten:
        if s.walk == "4":
            test_x.append(_features(s.frames))
            test_y.append(s.person)
        else:
            train_x.append(_features(s.frames))
            train_y.append(s.person)
    pred = _nearest_centroid(train_x, train_y, test_x)
    assert (pred == np.array(test_y)).mean() >= 0.8


def test_walks_of_one_person_are_not_separable_by_bone_lengths(ten):
    # Control: bone lengths identify persons, not recordings. Classes are the
    # walks of one person; train on the first half of each walk, test on the
    # second half. Accuracy must stay near chance (1/4).
    correct = total = 0
    for walks in by_person(ten).values():
        train_x, train_y, test_x, test_y = [], [], [], []
        for s in walks:
            chunks = np.array_split(s.frames, 4)
            for c in chunks[:2]:
                train_x.append(bone_vector(c))
                train_y.append(s.walk)
            for c in chunks[2:]:
                test_x.append(bone_vector(c))
                test_y.append(s.walk)
        pred = _nearest_centroid(train_x, train_y, test_x)
        correct += int((pred == np.array(test_y)).sum())
        total += len(test_y)
    assert correct / total < 0.5
