"""Scenes made to be looked at: environments whose rendered frames a vision-language model scores
(VLM-RM). CLIP judges pictures of the real world, so the humanoid stands on a lawn under a blue
sky instead of a black-and-grey checkerboard, seen from the front by a camera that
follows it (distance 3.5 m, elevation -10 degrees, azimuth 180, as in VLM-RM); episodes never end
early and last a fixed 100 steps.

The textures are painted into the compiled MuJoCo model (no asset files, no XML edits), so the
same code serves gymnasium's Humanoid-v5 and -v4. Importing this module registers
``rewardgen/HumanoidVLM-v0``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["HUMANOID_VLM_ID", "POSES", "VLMHumanoidEnv", "paint_lawn_and_sky", "track_camera"]

HUMANOID_VLM_ID = "rewardgen/HumanoidVLM-v0"
EPISODE_STEPS = 100
#: VLM-RM's camera: distance 3.5 m from the humanoid's centre of mass, 10 degrees above it, in front.
CAMERA = {"distance": 3.5, "elevation": -10.0, "azimuth": 180.0}

try:  # gymnasium >= 1.0
    from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv
except ImportError:  # gymnasium 0.29 (the sample-factory stack)
    from gymnasium.envs.mujoco.humanoid_v4 import HumanoidEnv


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Values in [0, 1] varying smoothly over ``size`` x ``size`` pixels, tiling seamlessly."""
    grid = rng.random((cells, cells))
    t = np.linspace(0, cells, size, endpoint=False)
    i0 = np.floor(t).astype(int)
    f = t - i0
    f = f * f * (3 - 2 * f)  # smoothstep
    i1 = (i0 + 1) % cells
    rows = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]


def _texture(model: Any, name: str | None, kind: int) -> tuple[int, int, int, int]:
    """(address, height, width, channels) of the texture named ``name`` (or the first of type ``kind``)."""
    import mujoco

    for i in range(model.ntex):
        if (name and mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_TEXTURE, i) == name) or (
            not name and model.tex_type[i] == kind
        ):
            return (
                int(model.tex_adr[i]),
                int(model.tex_height[i]),
                int(model.tex_width[i]),
                int(model.tex_nchannel[i]),
            )
    raise LookupError(f"the model has no texture {name or kind}")


def _write(model: Any, where: tuple[int, int, int, int], rgb: np.ndarray) -> None:
    adr, h, w, c = where
    image = np.clip(rgb * 255, 0, 255).astype(np.uint8).reshape(h, w, 3)
    if c == 4:
        image = np.concatenate([image, np.full((h, w, 1), 255, np.uint8)], axis=-1)
    model.tex_data[adr : adr + h * w * c] = image.reshape(-1)


def paint_lawn_and_sky(model: Any, floor_texture: str = "texplane", seed: int = 0) -> None:
    """Repaint a compiled model's floor as a mown lawn and its skybox sky blue,
    in place, before anything is rendered (textures reach the GPU with the first frame)."""
    import mujoco

    rng = np.random.default_rng(seed)
    adr, h, w, c = _texture(model, floor_texture, 0)
    size = w
    half = np.arange(size) // (size // 2)
    stripes = ((half[:, None] + half[None, :]) % 2).astype(float)
    blades = rng.random((size, size))
    shade = 0.82 + 0.1 * stripes + 0.12 * _smooth_noise(rng, size, 5) + 0.08 * blades
    grass = np.array([0.30, 0.52, 0.20])
    _write(model, (adr, h, w, c), shade[..., None] * grass)

    # The skybox: one sky blue (MuJoCo draws a skybox this far away at its coarsest mip level,
    # which averages any painted gradient or clouds away).
    adr, h, w, c = _texture(model, None, int(mujoco.mjtTexture.mjTEXTURE_SKYBOX))
    _write(model, (adr, h, w, c), np.broadcast_to(np.array([0.42, 0.62, 0.90]), (h, w, 3)))

    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, "MatPlane")
    if floor >= 0:
        model.mat_reflectance[floor] = 0.0  # grass is no mirror
        model.mat_texrepeat[floor] = (20, 20)  # 2 m stripes
    g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    if g >= 0:
        model.geom_rgba[g] = (1, 1, 1, 1)


def track_camera(model: Any, camera: str, distance: float, elevation: float, azimuth: float) -> None:
    """Point the model's centre-of-mass tracking ``camera`` at its body from ``distance`` m,
    ``elevation`` and ``azimuth`` degrees (MuJoCo's free-camera conventions)."""
    import mujoco

    cam = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cam < 0:
        raise LookupError(f"the model has no camera '{camera}'")
    el, az = np.radians(elevation), np.radians(azimuth)
    forward = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    rotation = np.stack([right, up, -forward], axis=1)  # camera x, y, z (it looks along -z)
    model.cam_mode[cam] = mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM
    model.cam_poscom0[cam] = -distance * forward  # from the subtree's centre of mass, world frame
    model.cam_mat0[cam] = rotation.reshape(-1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rotation.reshape(-1))
    model.cam_quat[cam] = quat


#: Ground-truth poses for judging a VLM reward (approximate, by geometry): name -> description.
POSES = {
    "kneel": "both knees below 0.25 m, torso upright (axis within 45 degrees of vertical), above 0.75 m",
    "lotus": "sitting upright: pelvis below 0.35 m, torso upright, both feet within 0.45 m of the pelvis",
    "splits": "feet more than 1.2 m apart along the floor with the pelvis below 0.45 m",
    "arms_raised": "standing (torso above 1.0 m) with both hands 0.1 m or more above the head",
}


class VLMHumanoidEnv(HumanoidEnv):
    """Gymnasium's humanoid, made to be looked at: lawn and sky, VLM-RM's tracking camera, no
    early termination (``terminate_when_unhealthy=False``); registered with 100-step episodes.
    ``pose(name)`` says whether the body is in one of :data:`POSES` (1.0) or not (0.0).

    Example:
        >>> import gymnasium as gym, rewardgen.tasks.scenes
        >>> env = gym.make("rewardgen/HumanoidVLM-v0", render_mode="rgb_array", width=224, height=224)
        >>> env.spec.max_episode_steps
        100
    """

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("terminate_when_unhealthy", False)
        kwargs.setdefault("camera_name", "track")
        super().__init__(**kwargs)
        paint_lawn_and_sky(self.model)
        track_camera(self.model, "track", **CAMERA)

    def _z(self, name: str, geom: bool = False) -> float:
        return float((self.data.geom(name) if geom else self.data.body(name)).xpos[2])

    @property
    def upright(self) -> float:
        """The vertical component of the torso's up axis: 1 upright, 0 lying."""
        return float(self.data.body("torso").xmat[8])

    @property
    def knee_heights(self) -> np.ndarray:
        return np.array([self._z("left_shin"), self._z("right_shin")])

    @property
    def hand_heights(self) -> np.ndarray:
        return np.array([self._z("left_hand", geom=True), self._z("right_hand", geom=True)])

    @property
    def feet_spread(self) -> float:
        """Horizontal distance between the feet (m)."""
        d = self.data.body("left_foot").xpos[:2] - self.data.body("right_foot").xpos[:2]
        return float(np.linalg.norm(d))

    @property
    def feet_to_pelvis(self) -> np.ndarray:
        """Horizontal distance of each foot from the pelvis (m)."""
        pelvis = self.data.body("pelvis").xpos[:2]
        feet = ("left_foot", "right_foot")
        return np.array([np.linalg.norm(self.data.body(f).xpos[:2] - pelvis) for f in feet])

    def pose(self, name: str) -> float:
        """1.0 when the body is in the pose ``name`` (one of :data:`POSES`), else 0.0."""
        torso, pelvis = self._z("torso"), self._z("pelvis")
        upright = self.upright > np.cos(np.radians(45))
        if name == "kneel":
            ok = self.knee_heights.max() < 0.25 and upright and torso > 0.75
        elif name == "lotus":
            ok = pelvis < 0.35 and upright and self.feet_to_pelvis.max() < 0.45
        elif name == "splits":
            ok = self.feet_spread > 1.2 and pelvis < 0.45
        elif name == "arms_raised":
            ok = torso > 1.0 and self.hand_heights.min() > self._z("head", geom=True) + 0.1
        else:
            raise KeyError(f"unknown pose '{name}': choose one of {', '.join(POSES)}")
        return float(ok)


if HUMANOID_VLM_ID not in gym.registry:
    gym.register(HUMANOID_VLM_ID, entry_point=VLMHumanoidEnv, max_episode_steps=EPISODE_STEPS)
