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

    def __init__(self, size: int = 50, seed: int = 0, copy: bool = False):
        self.size = size
        self.copy = copy  # store copies even of a batch of one (inputs whose memory is reused: CUDA graphs)
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> (B, C, H, W), each row either itself or a stored older image, in the
        dtype of `images` (a run resumed at another precision gets its stored bf16 fakes as float32).

        No copies for a batch of one (the paper's setting): the pool keeps the (detached) tensor it is
        given, and hands a stored one back as it is, since stored tensors are only ever replaced, never
        written to; the caller must not modify `images` in place afterwards (a generator's output, which
        autograd saved for backward, cannot be; CUDA graphs' outputs are, hence `copy`). Rows of a larger
        batch are stored as copies, so that one kept row does not hold its whole batch in memory."""
        if self.size == 0:
            return images
        images = images.detach()
        rows = [images] if images.shape[0] == 1 and not self.copy else [im.unsqueeze(0).clone() for im in images]
        out = []
        for _row, image in enumerate(rows):
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:  # a CPU generator: no device sync
                i = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[i].to(images.dtype))
                self.images[i] = image
            else:
                out.append(image)
        return out[0] if len(out) == 1 else torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {
            "size": self.size,
            # one tensor when all stored images have one size; a list where they differ (preprocess=none)
            "images": (torch.cat(self.images, 0) if len({im.shape for im in self.images}) == 1 else list(self.images))
            if self.images
            else torch.zeros(0),
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
