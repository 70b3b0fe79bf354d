"""Learning: augmentation, datasets (frames, target store), objectives, the loop, DDP, `simdistill train`."""
