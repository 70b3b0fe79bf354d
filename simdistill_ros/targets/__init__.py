"""The teacher target store as data: shards of stored teacher outputs, written crash-safe and read back
verified. No torch: training reads it through :mod:`simdistill_ros.training.store_dataset`."""
