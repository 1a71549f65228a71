"""The torch Dataset behind `PairStore.torch_dataset` (kept apart: only it needs torch)."""

from __future__ import annotations

import numpy as np
import torch


class PairDataset(torch.utils.data.Dataset):
    """Pairs (original, counterfactual) of one split, or its single examples; works with a plain
    DataLoader (tensors collate, texts collate into lists). Region features are read per item by a
    reader that each worker process opens for itself."""

    def __init__(self, view, pairs: bool, features=None):
        self.view, self.pairs, self.features = view, pairs, features
        self.columns = view.examples

    def __len__(self) -> int:
        return len(self.view.pairs) if self.pairs else len(self.view)

    def __getitem__(self, i: int):
        if self.pairs:
            original, counterfactual = self.view.pairs[i]
            return self.example(int(original)), self.example(int(counterfactual))
        return self.example(int(i))

    def example(self, row: int) -> dict:
        out = {}
        for field, column in self.columns.items():
            value = column[row]
            out[field] = value if column.dtype == object else torch.as_tensor(np.asarray(value))
        if self.features is not None:
            rows, keep = np.array([self.columns["image_row"][row]]), self.columns["region_mask"][row][None]
            out["features"] = torch.as_tensor(self.features.read(rows, keep)[0])
        return out
