"""The image history pool of Shrivastava et al. (2017), used by the paper (Sec. 4, "Training details"):
D is updated with a history of 50 generated images rather than only the latest ones."""

from __future__ import annotations

import torch


class ImagePool:
    """Until full, store each image and return it; once full, with probability 0.5 return a random
    stored image and store the new one in its place, else return the new image.

    Random draws come from an explicit CPU `torch.Generator` so that the pool can be checkpointed and
    restored exactly (`state_dict` / `load_state_dict`). size 0 disables the pool.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> (B, C, H, W), each row either itself or a stored older image, in the
        dtype of `images` (a run resumed at another precision gets its stored bf16 fakes as float32)."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[i].to(images.dtype, copy=True))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {
            "size": self.size,
            # one tensor when all stored images have one size; a list where they differ (preprocess=none)
            "images": (torch.cat(self.images, 0) if len({im.shape for im in self.images}) == 1 else list(self.images))
            if self.images else torch.zeros(0),
            "generator": self.generator.get_state(),
        }

    def clear(self) -> None:
        """Forget the stored images (kept: the random stream)."""
        self.images = []

    def load_state_dict(self, state: dict, device: torch.device | str | None = None) -> None:
        self.size = int(state["size"])
        images = state["images"]
        if isinstance(images, list):
            self.images = [im.to(device) for im in images]
        else:
            self.images = [im.unsqueeze(0).to(device) for im in images] if images.numel() else []
        self.generator.set_state(state["generator"])
